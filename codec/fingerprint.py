"""A codec's identity: one hash of its configuration and weights, which exports, files, calls and runs carry."""

from __future__ import annotations

import dataclasses
import hashlib
import json

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
