"""Validation metrics: known answers for SNR, SI-SDR, amplitude ratio and codebook usage."""

from __future__ import annotations

import math

import pytest
import torch

from sscodec.train.metrics import amplitude_ratio, codebook_usage, si_sdr_db, silent, snr_db

LENGTH = 8000


def tone_and_noise(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A [2, LENGTH] reference (a tone and a noisier tone) and unit-power white noise of the same shape."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(LENGTH) / 16000
    reference = torch.stack([0.3 * torch.sin(2 * math.pi * 220 * t), 0.05 * torch.sin(2 * math.pi * 97 * t)])
    reference = reference + 0.01 * torch.randn(reference.shape, generator=generator)
    noise = torch.randn(reference.shape, generator=generator)
    return reference, noise


def rms(signal: torch.Tensor) -> torch.Tensor:
    return signal.square().mean(dim=-1, keepdim=True).sqrt()


def test_snr_of_noise_added_at_20_db_is_20_db() -> None:
    reference, noise = tone_and_noise()
    # White noise drawn at 1/10 of the reference's RMS; its measured power scatters by about 1.6 % (0.07 dB)
    # over 8000 samples, so 0.25 dB is more than three standard deviations.
    estimate = reference + noise * rms(reference) / 10
    torch.testing.assert_close(snr_db(estimate, reference), torch.full((2,), 20.0), atol=0.25, rtol=0)


def test_snr_of_noise_scaled_to_an_exact_power_is_exact() -> None:
    reference, noise = tone_and_noise()
    for target_db in (-5.0, 0.0, 12.0, 30.0):
        scaled = noise * rms(reference) / rms(noise) * 10 ** (-target_db / 20)
        torch.testing.assert_close(
            snr_db(reference + scaled, reference), torch.full((2,), target_db), atol=1e-3, rtol=0
        )


def test_snr_punishes_a_level_change_but_si_sdr_does_not() -> None:
    reference, _ = tone_and_noise()
    half = 0.5 * reference
    # Error is half the reference: 10 log10(1 / 0.25) = 6.02 dB.
    torch.testing.assert_close(
        snr_db(half, reference), torch.full((2,), 10 * math.log10(4)), atol=1e-3, rtol=0
    )
    assert (si_sdr_db(half, reference) > 60).all()


def test_si_sdr_is_invariant_to_scaling_the_estimate() -> None:
    reference, noise = tone_and_noise()
    estimate = reference + 0.1 * noise * rms(reference)
    base = si_sdr_db(estimate, reference)
    assert (base > 15).all() and (base < 25).all()
    for scale in (0.5, 3.0, -2.0):
        torch.testing.assert_close(si_sdr_db(scale * estimate, reference), base, atol=1e-3, rtol=0)
    # Scaled by 0.1 the second item's error sits at -69 dBFS, where the -100 dBFS silence floor moves it by
    # 0.003 dB: invariance holds up to that floor, by design.
    torch.testing.assert_close(si_sdr_db(0.1 * estimate, reference), base, atol=5e-3, rtol=0)
    # Unrelated noise carries nothing of the reference.
    assert (si_sdr_db(noise, reference) < -20).all()


def test_si_sdr_ignores_a_dc_offset() -> None:
    reference, noise = tone_and_noise()
    estimate = reference + 0.1 * noise * rms(reference)
    torch.testing.assert_close(
        si_sdr_db(estimate + 0.2, reference), si_sdr_db(estimate, reference), atol=1e-3, rtol=0
    )


def test_amplitude_ratio_of_a_scaled_signal_is_the_scale() -> None:
    reference, _ = tone_and_noise()
    torch.testing.assert_close(
        amplitude_ratio(0.5 * reference, reference), torch.full((2,), 0.5), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        amplitude_ratio(2 * reference, reference), torch.full((2,), 2.0), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(amplitude_ratio(-reference, reference), torch.ones(2), atol=1e-5, rtol=0)


def test_metrics_are_per_item() -> None:
    reference, _ = tone_and_noise()
    estimate = reference.clone()
    estimate[1] = 0.25 * reference[1]
    torch.testing.assert_close(
        amplitude_ratio(estimate, reference), torch.tensor([1.0, 0.25]), atol=1e-5, rtol=0
    )
    snr = snr_db(estimate, reference)
    assert snr[0] > 60 and abs(snr[1] - 10 * math.log10(1 / 0.75**2)) < 1e-3


def test_silent_references_stay_finite_and_still_show_a_fault() -> None:
    silence = torch.zeros(2, LENGTH)
    _, noise = tone_and_noise()
    # Silence decoded to silence is fine: level kept, no error.
    assert torch.equal(amplitude_ratio(silence, silence), torch.ones(2))
    assert torch.equal(snr_db(silence, silence), torch.zeros(2))
    # Silence decoded to audible noise (-40 dBFS) must look bad, not be hidden by the guard.
    hiss = 0.01 * noise
    for value in (snr_db(hiss, silence), si_sdr_db(hiss, silence), amplitude_ratio(hiss, silence)):
        assert torch.isfinite(value).all()
    assert (snr_db(hiss, silence) < -50).all()
    assert (amplitude_ratio(hiss, silence) > 500).all()
    # A silent output for real speech reads as a zero level, not a NaN.
    reference, _ = tone_and_noise()
    assert (amplitude_ratio(silence, reference) < 1e-3).all()
    torch.testing.assert_close(snr_db(silence, reference), torch.zeros(2), atol=1e-3, rtol=0)


def test_metrics_compute_in_float32_whatever_the_input_precision() -> None:
    reference, noise = tone_and_noise()
    estimate = reference + 0.1 * noise * rms(reference)
    for metric in (snr_db, si_sdr_db, amplitude_ratio):
        value = metric(estimate.bfloat16(), reference.double())
        assert value.dtype == torch.float32 and value.shape == (2,)


def test_metrics_refuse_mismatched_shapes() -> None:
    reference, _ = tone_and_noise()
    for metric in (snr_db, si_sdr_db, amplitude_ratio):
        with pytest.raises(ValueError, match="batch, samples"):
            metric(reference[:, :-1], reference)
        with pytest.raises(ValueError, match="batch, samples"):
            metric(reference[0], reference[0])


def test_uniformly_used_codes_have_perplexity_equal_to_the_codebook_size() -> None:
    size = 16
    codes = torch.arange(size).repeat(3, 2, 2)  # [3, 2, 32]: every code 6 times in each codebook
    usage = codebook_usage(codes, size)
    assert usage.perplexity == pytest.approx([16.0, 16.0], rel=1e-5)
    assert usage.used_fraction == [1.0, 1.0]


def test_a_constant_code_has_perplexity_one_and_half_the_codes_used_uniformly_half() -> None:
    size = 16
    constant = torch.full((4, 1, 10), 7)
    half = torch.arange(0, size, 2).repeat(4, 1, 5)  # 8 of the 16 codes, equally often
    usage = codebook_usage(torch.cat([constant, half[..., :10]], dim=1), size)
    assert usage.perplexity[0] == pytest.approx(1.0)
    assert usage.used_fraction[0] == pytest.approx(1 / 16)
    usage_half = codebook_usage(half, size)
    assert usage_half.perplexity == [pytest.approx(8.0, rel=1e-5)]
    assert usage_half.used_fraction == [0.5]


def test_perplexity_of_a_skewed_distribution_matches_its_entropy() -> None:
    # Codes 0, 0, 0, 1: entropy -(3/4 ln 3/4 + 1/4 ln 1/4).
    codes = torch.tensor([[[0, 0, 0, 1]]])
    expected = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    usage = codebook_usage(codes, 1024)
    assert usage.perplexity == [pytest.approx(expected, rel=1e-5)]
    assert usage.used_fraction == [pytest.approx(2 / 1024)]


def test_codebook_usage_refuses_invalid_codes() -> None:
    with pytest.raises(ValueError, match="codes must be in 0..15"):
        codebook_usage(torch.tensor([[[0, 16]]]), 16)
    with pytest.raises(ValueError, match="codes must be in 0..15"):
        codebook_usage(torch.tensor([[[-1, 3]]]), 16)
    with pytest.raises(ValueError, match="integer"):
        codebook_usage(torch.zeros(1, 1, 4), 16)
    with pytest.raises(ValueError, match="non-empty"):
        codebook_usage(torch.zeros(1, 2, 0, dtype=torch.long), 16)


def test_silent_marks_references_below_minus_80_dbfs() -> None:
    # Found from outside: one digitally silent clip made a validation set's mean amplitude ratio 184 (its ratio
    # against the guard was 552) and hid the "output amplitude under 50%" sign; such clips leave the means.
    reference, _ = tone_and_noise()
    quiet_talker = reference * 10 ** (-45 / 20) / rms(reference)  # -45 dBFS: a quiet talker

    assert silent(torch.zeros(2, LENGTH)).tolist() == [True, True]
    assert silent(quiet_talker).tolist() == [False, False]
    assert silent(torch.stack([reference[0], 1e-5 * reference[1] / rms(reference)[1, 0]])).tolist() == [False, True]
