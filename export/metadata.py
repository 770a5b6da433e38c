"""The metadata_props every exported file carries, so a runtime needs nothing but the file."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import onnx
import torch

from sscodec.codec.config import CodecConfig


def codec_fingerprint(config: CodecConfig, state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 (64 hex digits) of what makes a codec this codec: its weights and its configuration.

    Over the configuration's non-default fields (sorted JSON: a field added to CodecConfig later, at its default,
    leaves old fingerprints as they were), then each tensor's name, shape and float32 bytes in name order. So
    exporting the same checkpoint again, or into fp16/int8 variants, gives the same fingerprint, and any change
    of a weight another one. Runtimes key compressed files and calls on its first bytes (README, "Bitstream").
    """
    defaults = {field.name: field.default for field in dataclasses.fields(CodecConfig)}
    changed = {key: value for key, value in config.to_dict().items() if value != defaults.get(key)}
    digest = hashlib.sha256(json.dumps(changed, sort_keys=True).encode())
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().to("cpu", torch.float32).contiguous()
        digest.update(f"{name}{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


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

