"""libopus packet by packet, with its own packet loss concealment, for `codec-bench call`.

The `opuscodec` binding's Python API only writes and reads whole Ogg streams, which has no way to say "this packet
is lost". Its extension module does export libopus's C API (the same libopus 1.6.1 `benchmarks/opus.py` uses), so
this calls `opus_encode` and `opus_decode` through ctypes: a lost packet is `opus_decode(NULL)`, libopus's PLC.
That build conceals identically at decoder complexity 0 and 10, so it has the classic PLC, not the neural one.
"""

from __future__ import annotations

import ctypes

import numpy as np

from sscodec.benchmarks.errors import BenchError
from sscodec.benchmarks.opus import COMPLEXITY, opus_missing

OPUS_APPLICATION_VOIP = 2048
OPUS_SET_BITRATE = 4002
OPUS_SET_COMPLEXITY = 4010
OPUS_GET_LOOKAHEAD = 4027
MAX_PACKET = 1500


def _library() -> ctypes.CDLL:
    if opus_missing():
        raise BenchError(opus_missing())
    import opuscodec

    lib = ctypes.CDLL(opuscodec.__file__)
    lib.opus_encoder_create.restype = ctypes.c_void_p
    lib.opus_encoder_create.argtypes = [
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_int),
    ]
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decoder_create.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_encode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
    lib.opus_decode.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int,
    ]
    lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    return lib


class OpusPackets:
    """A mono libopus encoder and decoder at `sample_rate`, 20 ms packets, VBR at `kbps`, complexity 10, VOIP
    mode, no in-band FEC (so a lost packet gets PLC alone)."""

    def __init__(self, sample_rate: int, kbps: float, frame_size: int) -> None:
        self._lib = _library()
        self.sample_rate, self.frame_size = sample_rate, frame_size
        error = ctypes.c_int()
        self._encoder = self._lib.opus_encoder_create(
            sample_rate, 1, OPUS_APPLICATION_VOIP, ctypes.byref(error)
        )
        if error.value or not self._encoder:
            raise BenchError(f"libopus cannot create an encoder at {sample_rate} Hz (error {error.value})")
        ctl = self._lib.opus_encoder_ctl
        ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        ctl(self._encoder, OPUS_SET_BITRATE, round(kbps * 1000))
        ctl(self._encoder, OPUS_SET_COMPLEXITY, COMPLEXITY)
        lookahead = ctypes.c_int()
        ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        ctl(self._encoder, OPUS_GET_LOOKAHEAD, ctypes.byref(lookahead))
        self.lookahead = lookahead.value  # samples the decoded audio lags the input
        self._decoder = None
        self.reset_decoder()

    def encode(self, audio: np.ndarray) -> list[bytes]:
        """Mono float audio [T] (T a multiple of frame_size) → one packet per frame."""
        pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
        out = (ctypes.c_ubyte * MAX_PACKET)()
        packets = []
        for start in range(0, pcm.size, self.frame_size):
            frame = np.ascontiguousarray(pcm[start : start + self.frame_size])
            size = self._lib.opus_encode(self._encoder, frame.ctypes.data, self.frame_size, out, MAX_PACKET)
            if size < 0:
                raise BenchError(f"opus_encode failed (error {size})")
            packets.append(bytes(out[:size]))
        return packets

    def reset_decoder(self) -> None:
        """A fresh decoder (a new received stream)."""
        if self._decoder:
            self._lib.opus_decoder_destroy(self._decoder)
        error = ctypes.c_int()
        self._decoder = self._lib.opus_decoder_create(self.sample_rate, 1, ctypes.byref(error))
        if error.value or not self._decoder:
            raise BenchError(
                f"libopus cannot create a decoder at {self.sample_rate} Hz (error {error.value})"
            )

    def decode(self, packet: bytes | None) -> np.ndarray:
        """One frame of float32 audio: the packet decoded, or libopus's concealment when it is None."""
        pcm = np.zeros(self.frame_size, dtype=np.int16)
        if packet is None:
            size = self._lib.opus_decode(self._decoder, None, 0, pcm.ctypes.data, self.frame_size, 0)
        else:
            data = (ctypes.c_ubyte * len(packet)).from_buffer_copy(packet)
            size = self._lib.opus_decode(
                self._decoder, data, len(packet), pcm.ctypes.data, self.frame_size, 0
            )
        if size != self.frame_size:
            raise BenchError(f"opus_decode returned {size} samples, expected {self.frame_size}")
        return pcm.astype(np.float32) / 32768

    def close(self) -> None:
        for handle, destroy in (
            (self._encoder, self._lib.opus_encoder_destroy),
            (self._decoder, self._lib.opus_decoder_destroy),
        ):
            if handle:
                destroy(handle)
        self._encoder = self._decoder = None
