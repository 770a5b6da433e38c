"""The metadata_props every exported file carries, so a runtime needs nothing but the file."""

from __future__ import annotations

import onnx

from sscodec.codec.config import CodecConfig


def metadata_props(config: CodecConfig, state_size: int | None, precision: str) -> dict[str, str]:
    """DESIGN.md's keys (sample_rate, frame_size, n_codebooks, codebook_size, state_size, codec_config)."""
    props = {
        "sample_rate": str(config.sample_rate),
        "frame_size": str(config.frame_size),
        "n_codebooks": str(config.n_codebooks),
        "codebook_size": str(config.codebook_size),
        "codec_config": config.to_json(),
        # Not in the contract: lets a runtime tell an fp16 or int8 file from the reference one.
        "precision": precision,
    }
    if state_size is not None:
        props["state_size"] = str(state_size)
    return props


def set_metadata(model: onnx.ModelProto, props: dict[str, str]) -> None:
    """Replace `model`'s metadata_props with `props`."""
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)


def read_metadata(model: onnx.ModelProto) -> dict[str, str]:
    """`model`'s metadata_props as a dict."""
    return {prop.key: prop.value for prop in model.metadata_props}
