"""The central property: running the codec chunk by chunk gives what one whole pass gives."""

from __future__ import annotations

import pytest
import torch

from sscodec.codec.blocks import ResidualUnit
from sscodec.codec.config import CodecConfig, preset
from sscodec.codec.conv import CausalConv1d, CausalConvTranspose1d
from sscodec.codec.model import Codec
from sscodec.codec.streaming import StreamState

FRAME = 320


def _model(name: str = "tiny", seed: int = 0) -> Codec:
    torch.manual_seed(seed)
    return Codec(preset(name)).eval()


def _run_layer_in_chunks(layer, x: torch.Tensor, chunk: int) -> torch.Tensor:
    state = torch.zeros(x.shape[0], layer.state_size())
    outputs = []
    for start in range(0, x.shape[-1], chunk):
        cursor = StreamState(state)
        outputs.append(layer.step(x[..., start : start + chunk], cursor))
        state = cursor.finish()
    return torch.cat(outputs, dim=-1)


@pytest.mark.parametrize(
    "layer, chunk",
    [
        (CausalConv1d(3, 5, 7), 1),
        (CausalConv1d(3, 5, 7, dilation=3), 4),
        (CausalConv1d(3, 5, 10, stride=5), 5),
        (CausalConv1d(3, 5, 1), 3),
        (CausalConvTranspose1d(6, 4, 16, stride=8), 1),
        (CausalConvTranspose1d(6, 4, 4, stride=2), 3),
        (ResidualUnit(4, 7, dilation=9), 2),
    ],
)
def test_each_layer_streams_like_offline(layer, chunk: int) -> None:
    torch.manual_seed(1)
    x = torch.randn(2, layer.conv.in_channels if hasattr(layer, "conv") else 4, 60)
    with torch.no_grad():
        whole = layer(x)
        chunked = _run_layer_in_chunks(layer, x, chunk)
    assert chunked.shape == whole.shape
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)


@pytest.mark.parametrize("chunk_frames", [1, 2, 3, 7])
@pytest.mark.parametrize("name", ["tiny", "small"])
def test_codec_chunks_equal_whole(name: str, chunk_frames: int) -> None:
    model = _model(name)
    torch.manual_seed(2)
    frames = 21
    audio = 0.3 * torch.randn(2, frames * FRAME)
    with torch.no_grad():
        codes = model.encode(audio)
        decoded = model.decode(codes)
        enc_state = model.initial_state(2, "encoder")
        dec_state = model.initial_state(2, "decoder")
        stream_codes, stream_audio = [], []
        for start in range(0, frames, chunk_frames):
            chunk = audio[:, start * FRAME : (start + chunk_frames) * FRAME]
            chunk_codes, enc_state = model.encode_step(chunk, enc_state)
            chunk_audio, dec_state = model.decode_step(chunk_codes, dec_state)
            stream_codes.append(chunk_codes)
            stream_audio.append(chunk_audio)
    assert torch.equal(torch.cat(stream_codes, dim=-1), codes)
    torch.testing.assert_close(torch.cat(stream_audio, dim=-1), decoded, atol=1e-5, rtol=0)


def test_state_sizes_are_what_the_layers_hold() -> None:
    model = _model("tiny")
    config = model.config
    convs = [m for m in model.encoder.modules() if isinstance(m, CausalConv1d)]
    assert model.encoder_state_size == sum(c.conv.in_channels * c.padding for c in convs)
    assert model.encoder_state_size > 0 and model.decoder_state_size > 0
    assert config.frame_size == FRAME


def test_streaming_refuses_partial_frames_and_wrong_state() -> None:
    model = _model("tiny")
    with pytest.raises(ValueError, match="whole number of 320-sample frames"):
        model.encode_step(torch.zeros(1, 500), model.initial_state(1, "encoder"))
    with pytest.raises(ValueError, match="encoder state must have shape"):
        model.encode_step(torch.zeros(1, 320), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="decoder state must have shape"):
        model.decode_step(torch.zeros(1, 12, 1, dtype=torch.long), torch.zeros(2, model.decoder_state_size))


def test_custom_strides_keep_the_property() -> None:
    torch.manual_seed(3)
    config = CodecConfig(phases=1, channels=4, strides=(2, 4, 5, 8), latent_dim=16, dilations=(1, 3))
    model = Codec(config).eval()
    audio = 0.3 * torch.randn(1, 5 * FRAME)
    with torch.no_grad():
        whole = model.decode(model.encode(audio))
        state_e, state_d = model.initial_state(1, "encoder"), model.initial_state(1, "decoder")
        parts = []
        for start in range(0, 5 * FRAME, FRAME):
            codes, state_e = model.encode_step(audio[:, start : start + FRAME], state_e)
            out, state_d = model.decode_step(codes, state_d)
            parts.append(out)
    torch.testing.assert_close(torch.cat(parts, -1), whole, atol=1e-5, rtol=0)
