"""Parity of exported graphs with the PyTorch model: audio within 1e-4, codes equal except at exact ties."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import Tensor

from sscodec.codec.model import Codec
from sscodec.common.errors import first_line
from sscodec.export.errors import ParityError
from sscodec.export.runtime import CPU, Provider, quiet_session, run_graph

TOLERANCE = 1e-4  # docs/CONTRACTS.md: max abs difference of decoded audio
# A code may differ only where two codebook entries are this close in the quantizer's similarity (negative
# squared distance): float32 rounding differs between PyTorch and ONNX Runtime by about 1e-7, real mistakes
# by far more.
TIE_TOLERANCE = 1e-5


def reference_codes(codec: Codec, audio: np.ndarray) -> np.ndarray:
    """PyTorch codes [B, n_codebooks, F] of audio [B, T] (T a multiple of frame_size)."""
    with torch.no_grad():
        return codec.encode(torch.from_numpy(audio)).numpy()


def reference_audio(codec: Codec, codes: np.ndarray) -> np.ndarray:
    """PyTorch decoded audio [B, F · frame_size] of codes [B, Q, F]."""
    with torch.no_grad():
        return codec.decode(torch.from_numpy(codes)).numpy()


def compare_codes(codec: Codec, audio: np.ndarray, codes: np.ndarray, name: str) -> int:
    """Number of frames whose `codes` differ from PyTorch's; raises ParityError unless each is at a tie.

    In a frame, the first codebook that differs must pick an entry within TIE_TOLERANCE of PyTorch's
    best; the later codebooks of that frame quantize a different residual, so they may differ freely.
    """
    got = torch.from_numpy(codes)
    diverged = torch.zeros(got.shape[0], got.shape[2], dtype=torch.bool)

    def choose(index: int, similarities: Tensor) -> Tensor:
        """PyTorch's choice for codebook `index`, after checking that `codes` differ from it only at ties."""
        nonlocal diverged
        best = similarities.argmax(dim=-1)
        differs = (got[:, index] != best) & ~diverged
        margin = similarities.gather(-1, best[..., None]) - similarities.gather(-1, got[:, index, :, None])
        broken = differs & (margin[..., 0] > TIE_TOLERANCE)
        if broken.any():
            batch, frame = (int(i) for i in broken.nonzero()[0])
            raise ParityError(
                f"{name}: codebook {index} frame {frame} (item {batch}) picks {int(got[batch, index, frame])}"
                f" instead of {int(best[batch, frame])}, similarity margin {float(margin[batch, frame]):.2e}"
                f" is not a tie (<= {TIE_TOLERANCE:g})"
            )
        diverged |= differs
        return best

    with torch.no_grad():
        codec.quantizer.encode(codec.encoder(torch.from_numpy(audio)), choose)
    return int(diverged.sum())


def compare_audio(expected: np.ndarray, actual: np.ndarray, name: str) -> float:
    """Max abs difference of two decoded signals; raises ParityError above TOLERANCE."""
    if expected.shape != actual.shape:
        raise ParityError(f"{name}: output shape {actual.shape}, PyTorch gives {expected.shape}")
    error = float(np.abs(expected - actual).max())
    if not error <= TOLERANCE:
        raise ParityError(f"{name}: max abs error {error:.3g} against PyTorch exceeds {TOLERANCE:g}")
    return error


def verify_export(
    codec: Codec,
    paths: dict[str, Path],
    audio: np.ndarray,
    providers: Sequence[Provider] = CPU,
    chunk_frames: Sequence[int] = (1, 4),
) -> tuple[dict[str, int], dict[str, float]]:
    """Check every file with onnx.checker, then run it on `audio` [B, T] against PyTorch.

    Stream graphs run from a zero state, `chunk_frames` frames per call (each value in turn); decoders run
    with 1 and with all codebooks. Returns (code mismatches of the encoders, max abs error of the decoders).
    """
    for path in paths.values():
        try:
            onnx.checker.check_model(path, full_check=True)
        except onnx.checker.ValidationError as error:
            raise ParityError(f"{path.name}: onnx.checker rejects it ({first_line(error)})") from None
    codes = reference_codes(codec, audio)
    mismatches: dict[str, int] = {}
    errors: dict[str, float] = {}
    for name, path in paths.items():
        session = quiet_session(path, providers)
        chunkings = chunk_frames if name.endswith("_stream") else (1,)
        if name.startswith("encoder"):
            mismatches[name] = max(
                compare_codes(codec, audio, run_graph(session, audio, k), path.name) for k in chunkings
            )
        else:
            errors[name] = max(
                compare_audio(reference_audio(codec, codes[:, :q]), run_graph(session, codes[:, :q], k), path.name)
                for q in (1, codec.config.n_codebooks)
                for k in chunkings
            )
    return mismatches, errors
