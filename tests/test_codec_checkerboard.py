"""Checkerboard-free decoding (CodecConfig.checkerboard_free): a pause codes to a constant latent, and a
constant latent must decode to a constant waveform, with no pattern repeating every frame or every `phases`
samples (the frame-rate buzz and the sample_rate / 4 line of the issue's artifact probes)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sscodec.codec.config import preset
from sscodec.codec.model import Codec


def _constant_code_output(model: Codec, frames: int = 40) -> torch.Tensor:
    """The decoded waveform [T] of one code repeated for `frames` frames, after the decoder's transient."""
    codes = torch.full((1, model.config.n_codebooks, frames), 7, dtype=torch.long)
    with torch.no_grad():
        audio = model.decode(codes)[0]
    return audio[audio.numel() // 2 :]


def _pattern_rms(audio: torch.Tensor) -> float:
    """RMS of the waveform's deviation from its own mean: a constant waveform gives 0."""
    return float((audio - audio.mean()).pow(2).mean().sqrt())


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_a_constant_latent_decodes_to_a_constant_waveform(name: str) -> None:
    torch.manual_seed(0)
    plain = Codec(preset(name)).eval()
    torch.manual_seed(0)
    free = Codec(dataclasses.replace(preset(name), checkerboard_free=True)).eval()
    # Random weights checkerboard: the plain decoder answers a constant with a pattern repeating every frame.
    assert _pattern_rms(_constant_code_output(plain)) > 1e-3
    assert _pattern_rms(_constant_code_output(free)) < 1e-6
    # The same holds once the parametrizations are folded for export.
    assert _pattern_rms(_constant_code_output(free.fold_weight_norm())) < 1e-6


def test_making_a_trained_model_checkerboard_free_projects_it_and_keeps_its_streaming() -> None:
    torch.manual_seed(1)
    model = Codec(preset("tiny")).eval()
    audio = 0.1 * torch.randn(1, 8 * model.config.frame_size)
    with torch.no_grad():
        before = model(audio).audio
        model.make_checkerboard_free()
        after = model(audio).audio
    assert model.config.checkerboard_free
    assert _pattern_rms(_constant_code_output(model)) < 1e-6
    assert not torch.allclose(before, after)  # the projection changed the decoder
    # Chunked equals whole for the projected model too.
    with torch.no_grad():
        codes = model.encode(audio)
        whole = model.decode(codes)
        state = model.initial_state(1, "decoder")
        chunks = []
        for f in range(codes.shape[-1]):
            out, state = model.decode_step(codes[..., f : f + 1], state)
            chunks.append(out)
    torch.testing.assert_close(torch.cat(chunks, dim=-1), whole, atol=1e-5, rtol=0)
    assert model.fold_weight_norm().config.checkerboard_free
    with pytest.raises(ValueError, match="folded"):
        Codec(preset("tiny")).fold_weight_norm().make_checkerboard_free()


def _upsampling_tensors(model: Codec) -> list[torch.Tensor]:
    """Every upsampling kernel and, where shared, bias, as the decoder computes them now (copies)."""
    tensors = []
    for conv, _, shared_bias in model.decoder.upsampling():
        tensors.append(conv.weight.detach().clone())
        if shared_bias:
            tensors.append(conv.bias.detach().clone())
    return tensors


def test_phase_sum_deviation_is_the_share_the_projection_moves() -> None:
    torch.manual_seed(0)
    model = Codec(preset("tiny"))
    before = _upsampling_tensors(model)
    deviation = float(model.decoder.phase_sum_deviation().detach())
    model.make_checkerboard_free()
    after = _upsampling_tensors(model)
    moved = sum(float((b - a).square().sum()) for b, a in zip(before, after, strict=True))
    assert deviation > 1e-3
    assert deviation == pytest.approx(moved / sum(float(b.square().sum()) for b in before), rel=1e-5)
    assert float(model.decoder.phase_sum_deviation().detach()) < 1e-12  # projected: nothing left to move


def test_checkerboard_weight_pulls_training_towards_checkerboard_free_kernels(tmp_path) -> None:
    from sscodec.codec.checkpoint import load_codec
    from sscodec.train.cli import main as train
    from tests.conftest import TELUGU_VAL, telugu_train_clips

    if not TELUGU_VAL.is_dir():
        pytest.skip("shared speech data not found")
    telugu_train_clips(tmp_path / "train", 4)
    deviation = {}
    for weight in ("0", "100"):
        out = tmp_path / f"weight{weight}"
        train(["--data_dir", str(tmp_path / "train"), "--no_validation", "--checkpoint_dir", str(out),
               "--preset", "tiny", "--device", "cpu", "--batch_size", "2", "--segment_seconds", "0.5",
               "--num_workers", "0", "--max_steps", "20", "--learning_rate", "1e-2", "--seed", "0",
               "--checkerboard_weight", weight])
        deviation[weight] = float(load_codec(out / "latest.pt").decoder.phase_sum_deviation().detach())
    # Same seed, same batches: only the pull differs.
    assert deviation["100"] < 0.2 * deviation["0"]


def _quarter_rate_line(model: Codec, codes: torch.Tensor) -> tuple[float, float]:
    """Power of the decoder's output (before its tanh) at exactly sample_rate / phases, in dB against the mean
    power of the spectrum 200 Hz either side (the artifact probe's measure) and against the whole spectrum's."""
    with torch.no_grad():
        audio = torch.nn.Sequential(*list(model.decoder)[:-1])(model.quantizer.decode(codes))[0]  # before the tanh
    power = torch.fft.rfft(audio.double()).abs().square()
    line, side = audio.numel() // model.config.phases, 200 * audio.numel() // model.config.sample_rate
    sides = torch.cat([power[line - side : line], power[line + 1 : line + side + 1]])
    return float(10 * torch.log10(power[line] / sides.mean())), float(10 * torch.log10(power[line] / power.mean()))


def test_a_fold_free_decoder_has_no_line_at_a_quarter_of_the_rate_whatever_it_decodes() -> None:
    # The fault 2: a line at sample_rate / 4 (the 4-phase fold) in pauses. The fold's output at that
    # frequency is its input's 0 Hz through the phases' tap sums: equal sums leave nothing there, for any codes.
    torch.manual_seed(3)
    plain = Codec(preset("tiny")).eval()
    torch.manual_seed(3)
    fold_free = Codec(dataclasses.replace(preset("tiny"), fold_free=True)).eval()
    codes = torch.randint(0, plain.config.codebook_size, (1, plain.config.n_codebooks, 200))
    # What is left is the stream's start from a zero state; near sample_rate / 4 the fold-free output is itself
    # low (a notch), hence the two measures.
    assert min(_quarter_rate_line(plain, codes)) > 20.0
    for model in (fold_free, fold_free.fold_weight_norm()):  # and once folded for export
        against_sides, against_all = _quarter_rate_line(model, codes)
        assert against_sides < -10.0 and against_all < -35.0


def test_the_fold_alone_is_projected_and_a_later_full_projection_adds_the_rest() -> None:
    torch.manual_seed(1)
    model = Codec(preset("tiny"))
    before = _upsampling_tensors(model)
    model.make_checkerboard_free(fold_only=True)
    after = _upsampling_tensors(model)
    assert (model.config.fold_free, model.config.checkerboard_free) == (True, False)
    # The transposed convs are as they were; the fold's kernel and its per-phase biases moved.
    assert all(torch.equal(b, a) for b, a in zip(before[:-2], after[:-2], strict=True))
    assert not torch.equal(before[-2], after[-2]) and torch.all(after[-1] == after[-1][0])
    model.make_checkerboard_free()
    assert (model.config.fold_free, model.config.checkerboard_free) == (False, True)
    assert float(model.decoder.phase_sum_deviation().detach()) < 1e-12
    with pytest.raises(ValueError, match="checkerboard_free implies fold_free"):
        dataclasses.replace(preset("tiny"), fold_free=True, checkerboard_free=True)


def test_codec_train_fold_free_projects_an_init_from_model_and_trains_it(tmp_path) -> None:
    from click.testing import CliRunner

    from sscodec.benchmarks.training_curve_report import recipe_text
    from sscodec.codec.checkpoint import load_codec, read_checkpoint, save_codec
    from sscodec.train.cli import command
    from tests.conftest import TELUGU_VAL, telugu_train_clips

    if not TELUGU_VAL.is_dir():
        pytest.skip("shared speech data not found")
    telugu_train_clips(tmp_path / "train", 4)
    torch.manual_seed(0)
    save_codec(Codec(preset("tiny")), tmp_path / "start.pt")
    common = ["--data_dir", str(tmp_path / "train"), "--no_validation", "--device", "cpu", "--batch_size", "2",
              "--segment_seconds", "0.5", "--num_workers", "0", "--max_steps", "3", "--init_from",
              str(tmp_path / "start.pt")]
    result = CliRunner().invoke(command, [*common, "--checkpoint_dir", str(tmp_path / "run"), "--fold_free",
                                          "--decoder_only"])
    assert result.exit_code == 0, result.output
    model = load_codec(tmp_path / "run" / "latest.pt").eval()
    assert (model.config.fold_free, model.config.checkerboard_free) == (True, False)
    codes = torch.randint(0, model.config.codebook_size, (1, model.config.n_codebooks, 200))
    assert _quarter_rate_line(model, codes)[1] < -35.0
    run_recipe = read_checkpoint(tmp_path / "run" / "latest.pt")["train_config"]
    assert run_recipe["fold_free"] and "fold-free" in recipe_text(run_recipe)  # codec-bench curve's recipe column
    result = CliRunner().invoke(command, [*common, "--checkpoint_dir", str(tmp_path / "both"), "--fold_free",
                                          "--checkerboard_free"])
    assert result.exit_code == 2 and "--checkerboard_free implies --fold_free" in result.output
