"""The codec: causal encoder, residual VQ and causal decoder, offline and chunk by chunk."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from sscodec.codec.blocks import Decoder, Encoder
from sscodec.codec.config import CodecConfig
from sscodec.codec.conv import fold_weight_norm
from sscodec.codec.quantizer import ResidualVectorQuantizer
from sscodec.codec.streaming import StreamState


@dataclass
class CodecOutput:
    """What one training pass produces."""

    audio: Tensor  # [B, T], same length as the input
    codes: Tensor  # [B, Q, F]
    latents: Tensor  # encoder output before quantization, [B, D, F]
    commitment_loss: Tensor


class Codec(nn.Module):
    """A streaming speech codec: 16 kHz audio ↔ `n_codebooks` codes every `frame_size` samples."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.quantizer = ResidualVectorQuantizer(config)
        self.decoder = Decoder(config)

    # -- offline ---------------------------------------------------------------------------------
    def forward(self, audio: Tensor, n_codebooks: int | None = None) -> CodecOutput:
        """Encode, quantize and decode `audio` [B, T]; pads to whole frames and trims back."""
        length = check_audio(audio)
        padded = pad_to_frames(audio, self.config.frame_size)
        latents = self.encoder(padded)
        quantized = self.quantizer(latents, self._checked_count(n_codebooks))
        decoded = self.decoder(quantized.latents)[:, :length]
        return CodecOutput(decoded, quantized.codes, latents, quantized.commitment_loss)

    def encode(self, audio: Tensor) -> Tensor:
        """Codes [B, n_codebooks, ceil(T / frame_size)] of audio [B, T] (zero-padded to whole frames)."""
        check_audio(audio)
        return self.encode_unchecked(pad_to_frames(audio, self.config.frame_size))

    def decode(self, codes: Tensor) -> Tensor:
        """Audio [B, F · frame_size] from codes [B, Q, F]; uses the first Q codebooks."""
        self.check_codes(codes)
        return self.decode_unchecked(codes)

    # The *_unchecked paths skip the Python-side validation, which torch.export would bake in as constants
    # or refuse: the exported graphs run these, and the runtime that drives them owns the checks instead.
    def encode_unchecked(self, audio: Tensor) -> Tensor:
        """`encode` of audio [B, T], T a whole number of frames, without input checks."""
        return self.quantizer.encode(self.encoder(audio))

    def decode_unchecked(self, codes: Tensor) -> Tensor:
        """`decode` without input checks."""
        return self.decoder(self.quantizer.decode(codes))

    def encode_step_unchecked(self, audio: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """`encode_step` without input checks."""
        cursor = StreamState(state)
        codes = self.quantizer.encode(self.encoder.step(audio, cursor))
        return codes, cursor.finish()

    def decode_step_unchecked(self, codes: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """`decode_step` without input checks."""
        cursor = StreamState(state)
        audio = self.decoder.step(self.quantizer.decode(codes), cursor)
        return audio, cursor.finish()

    # -- streaming -------------------------------------------------------------------------------
    @property
    def encoder_state_size(self) -> int:
        return self.encoder.state_size()

    @property
    def decoder_state_size(self) -> int:
        return self.decoder.state_size()

    def encode_step(self, audio: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """Codes [B, n_codebooks, K] of a chunk of K whole frames, and the next encoder state."""
        check_audio(audio)
        if audio.shape[1] % self.config.frame_size:
            raise ValueError(
                f"a stream chunk must be a whole number of {self.config.frame_size}-sample frames, "
                f"got {audio.shape[1]} samples"
            )
        self._check_state(state, audio.shape[0], self.encoder_state_size, "encoder")
        return self.encode_step_unchecked(audio, state)

    def decode_step(self, codes: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """Audio [B, K · frame_size] of K frames of codes [B, Q, K], and the next decoder state."""
        self.check_codes(codes)
        self._check_state(state, codes.shape[0], self.decoder_state_size, "decoder")
        return self.decode_step_unchecked(codes, state)

    def initial_state(self, batch: int, part: str) -> Tensor:
        """The zero state that starts a stream, for `part` "encoder" or "decoder"."""
        size = {"encoder": self.encoder_state_size, "decoder": self.decoder_state_size}[part]
        return torch.zeros(batch, size, device=next(self.parameters()).device)

    # -- helpers ---------------------------------------------------------------------------------
    def make_checkerboard_free(self, fold_only: bool = False) -> Codec:
        """Project the decoder's upsampling onto checkerboard-free kernels (`CodecConfig.checkerboard_free`), or
        with `fold_only` its phase fold alone (`CodecConfig.fold_free`), in place, e.g. to continue training a
        model trained without; returns self. ValueError once folded."""
        if self.config.checkerboard_free or (fold_only and self.config.fold_free):
            return self
        if not any(parametrize.is_parametrized(m) for m in self.decoder.modules()):
            raise ValueError("weights are folded for inference; make a training checkpoint checkerboard-free")
        self.decoder.equalise_phase_sums(fold_only)
        change = {"fold_free": True} if fold_only else {"checkerboard_free": True, "fold_free": False}
        self.config = dataclasses.replace(self.config, **change)
        return self

    def fold_weight_norm(self) -> Codec:
        """Fold weight norm into plain weights (for export and inference); returns self."""
        fold_weight_norm(self)
        return self

    def check_codes(self, codes: Tensor) -> None:
        """Raise ValueError unless `codes` is an integer [B, Q, F] tensor of valid codes, 1 ≤ Q ≤ max."""
        if not isinstance(codes, Tensor) or codes.dim() != 3:
            raise ValueError(f"codes must be a [batch, codebooks, frames] tensor, got {_shape(codes)}")
        if codes.dtype.is_floating_point or codes.dtype == torch.bool:
            raise ValueError(f"codes must be integers, got {codes.dtype}")
        if not 1 <= codes.shape[1] <= self.config.n_codebooks:
            raise ValueError(f"codes must use 1..{self.config.n_codebooks} codebooks, got {codes.shape[1]}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.config.codebook_size):
            raise ValueError(
                f"codes must be in 0..{self.config.codebook_size - 1}, "
                f"got values in {int(codes.min())}..{int(codes.max())}"
            )

    def _checked_count(self, n_codebooks: int | None) -> int | None:
        if n_codebooks is not None and not 1 <= n_codebooks <= self.config.n_codebooks:
            raise ValueError(f"n_codebooks must be in 1..{self.config.n_codebooks}, got {n_codebooks}")
        return n_codebooks

    @staticmethod
    def _check_state(state: Tensor, batch: int, size: int, part: str) -> None:
        if not isinstance(state, Tensor) or tuple(state.shape) != (batch, size):
            raise ValueError(f"{part} state must have shape ({batch}, {size}), got {_shape(state)}")


def check_audio(audio: Tensor) -> int:
    """Raise ValueError unless `audio` is a finite float [B, T] tensor with T > 0; returns T."""
    if not isinstance(audio, Tensor) or audio.dim() != 2:
        raise ValueError(f"audio must be a [batch, samples] tensor, got {_shape(audio)}")
    if not audio.dtype.is_floating_point:
        raise ValueError(f"audio must be floating point, got {audio.dtype}")
    if audio.shape[1] == 0:
        raise ValueError("audio is empty")
    if not torch.isfinite(audio).all():
        raise ValueError("audio contains NaN or Inf samples")
    return audio.shape[1]


def pad_to_frames(audio: Tensor, frame_size: int) -> Tensor:
    """Zero-pad [B, T] on the right to a whole number of frames."""
    return F.pad(audio, (0, -audio.shape[-1] % frame_size))


def _shape(value: object) -> str:
    return f"shape {tuple(value.shape)}" if isinstance(value, Tensor) else type(value).__name__
