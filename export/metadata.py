"""The metadata_props every exported file carries, so a runtime needs nothing but the file."""

from __future__ import annotations

import onnx

from sscodec.codec.config import CodecConfig


def metadata_props(config: CodecConfig, state_size: int | None, precision: str, fingerprint: str) -> dict[str, str]:
    """The metadata keys of docs/CONTRACTS.md (sample_rate, frame_size, n_codebooks, codebook_size, state_size,
    codec_config, codec_fingerprint: `codec_fingerprint`'s)."""
    props = {
        "sample_rate": str(config.sample_rate),
        "frame_size": str(config.frame_size),
        "n_codebooks": str(config.n_codebooks),
        "codebook_size": str(config.codebook_size),
        "codec_config": config.to_json(),
        # Not in the contract: lets a runtime tell an fp16 or int8 file from the reference one.
        "precision": precision,
        "codec_fingerprint": fingerprint,
    }
    if state_size is not None:
        props["state_size"] = str(state_size)
    return props


def set_metadata(model: onnx.ModelProto, props: dict[str, str]) -> None:
    """Replace `model`'s metadata_props with `props`."""
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)

