"""The metadata_props every exported file carries, so a runtime needs nothing but the file."""

from __future__ import annotations

from pathlib import Path

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


def read_fingerprint(path: Path) -> str | None:
    """The codec_fingerprint stamped in the exported graph at `path`; None for a graph exported before it was
    stamped or a file that is not an ONNX model."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    # A file that is not a model raises protobuf's DecodeError, a package this layer does not import.
    except Exception:  # noqa: BLE001
        return None
    return {prop.key: prop.value for prop in model.metadata_props}.get("codec_fingerprint")
