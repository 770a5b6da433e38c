"""Training losses: the mel filterbank and spectrogram match librosa, known answers for every loss."""

from __future__ import annotations

import copy
import itertools
import math

import librosa
import numpy as np
import pytest
import torch

from sscodec.train.discriminators import DiscriminatorOutput
from sscodec.train.losses import (
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    l1_waveform_loss,
)

SAMPLE_RATE = 16000
WINDOWS = (64, 128, 256, 512, 1024)
# float32 against librosa's float64: the largest errors measured were 6e-6 (filterbank, relative to its
# largest weight) and 8e-6 (spectrogram, relative to each value).
FILTERBANK_TOLERANCE = 1e-5
SPECTROGRAM_RTOL = 2e-5


def speech_like(batch: int = 2, length: int = 8000, seed: int = 0) -> torch.Tensor:
    """Voiced-speech stand-in: harmonics of a gliding pitch under a syllable-rate envelope, plus breath."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / SAMPLE_RATE
    signals = []
    for item in range(batch):
        f0 = 110 + 40 * item + 20 * torch.sin(2 * math.pi * 3 * t)
        phase = 2 * math.pi * torch.cumsum(f0, 0) / SAMPLE_RATE
        voiced = sum(torch.sin(k * phase) / k for k in range(1, 30))
        envelope = 0.5 + 0.5 * torch.sin(2 * math.pi * 4 * t) ** 2
        breath = 0.01 * torch.randn(length, generator=generator)
        signals.append(0.1 * envelope * voiced + breath)
    return torch.stack(signals)


def librosa_filterbank(window: int) -> np.ndarray:
    return librosa.filters.mel(
        sr=SAMPLE_RATE, n_fft=window, n_mels=window // 8, fmin=0.0, fmax=SAMPLE_RATE / 2, dtype=np.float64
    )


def filterbank_matches_librosa(filterbank: np.ndarray, window: int) -> bool:
    """Whether a [n_mels, n_freqs] filterbank is librosa's Slaney one within FILTERBANK_TOLERANCE."""
    reference = librosa_filterbank(window)
    error = np.abs(filterbank - reference).max()
    return filterbank.shape == reference.shape and error <= FILTERBANK_TOLERANCE * reference.max()


@pytest.mark.parametrize("scale", range(len(WINDOWS)))
def test_filterbank_matches_librosa_slaney_mel(scale: int) -> None:
    filterbank = MultiScaleMelLoss().filterbank(WINDOWS[scale]).numpy().astype(np.float64)
    assert filterbank_matches_librosa(filterbank, WINDOWS[scale])
    assert (filterbank.max(axis=1) > 0).all(), "every mel band must cover at least one bin"


def test_a_random_matrix_filterbank_fails_the_librosa_check() -> None:
    # A broken "mel loss" seen in the field multiplied the STFT by a random matrix; the check above must catch that.
    window = 512
    torch.manual_seed(0)
    random_matrix = torch.rand(window // 8, window // 2 + 1).numpy().astype(np.float64)
    scaled_to_librosa = random_matrix * librosa_filterbank(window).max() / random_matrix.max()
    assert not filterbank_matches_librosa(random_matrix, window)
    assert not filterbank_matches_librosa(scaled_to_librosa, window)


@pytest.mark.parametrize("scale", range(len(WINDOWS)))
def test_mel_spectrogram_matches_librosa(scale: int) -> None:
    window = WINDOWS[scale]
    audio = speech_like(batch=1)
    ours = MultiScaleMelLoss().mel_spectrogram(audio, window)[0].double().numpy()
    reference = librosa.feature.melspectrogram(
        y=audio[0].double().numpy(),
        sr=SAMPLE_RATE,
        n_fft=window,
        hop_length=window // 4,
        window="hann",
        center=False,
        power=1.0,
        n_mels=window // 8,
        fmin=0.0,
        fmax=SAMPLE_RATE / 2,
        norm="slaney",
        htk=False,
    )
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, rtol=SPECTROGRAM_RTOL, atol=0)


def test_a_random_matrix_mel_spectrogram_is_far_from_librosa() -> None:
    window = 512
    audio = speech_like(batch=1)[0].double().numpy()
    magnitude = np.abs(librosa.stft(audio, n_fft=window, hop_length=window // 4, center=False))
    reference = librosa_filterbank(window) @ magnitude
    random_matrix = np.random.default_rng(0).random((window // 8, window // 2 + 1))
    random_mel = (random_matrix * librosa_filterbank(window).max() / random_matrix.max()) @ magnitude
    relative_error = np.abs(random_mel - reference) / reference
    assert np.median(relative_error) > 1000 * SPECTROGRAM_RTOL


def fixed_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """Three (pred, target) pairs of 1.5 s, from formulas alone (no random generator): voiced, chirp, quiet."""
    n = 24000
    t = torch.arange(n, dtype=torch.float64) / SAMPLE_RATE
    voiced = 0.4 * torch.sin(2 * math.pi * 140 * t) + 0.2 * torch.sin(2 * math.pi * 280 * t + 0.3)
    voiced = voiced * (1 + 0.5 * torch.sin(2 * math.pi * 3 * t))
    chirp = 0.3 * torch.sin(2 * math.pi * (100 * t + 2500 * t**2))
    hashed = torch.frac(torch.sin(torch.arange(n, dtype=torch.float64) * 12.9898) * 43758.5453) - 0.5
    pairs = [
        (voiced, voiced * 0.8 + 0.01 * hashed),
        (chirp, torch.roll(chirp, 7)),
        (1e-3 * hashed, 0.5 * hashed * torch.exp(-4 * t)),
    ]
    return torch.stack([p for p, _ in pairs]).float(), torch.stack([q for _, q in pairs]).float()


def test_mel_distance_keeps_the_values_of_the_torchaudio_implementation() -> None:
    # Measured with the previous implementation (torchaudio 2.11.0 MelSpectrogram, torch 2.11.0, CPU) on
    # fixed_pairs(), so mel distances of old runs, checkpoints and results stay comparable with new ones.
    # Compared in float64: in float32 the CPU's FFT and matmul kernels move the last entry by ~5e-6 each way (the
    # same code gave -2.5670567 on an Intel Xeon and the pinned -2.5670674 on an AMD EPYC, both AVX-512), so one
    # side of a float32 comparison was the machine's rounding (found by clean-clone CI on a new VM).
    torchaudio_distance = [1.2753417, 0.0085929, 1.3758106]
    torchaudio_log_mel_entry = [-2.416142702, -1.540281653, -0.408107221, -0.176756114, -2.567067385]
    pred, target = fixed_pairs()
    loss = MultiScaleMelLoss()
    exact = copy.deepcopy(loss).double()
    torch.testing.assert_close(
        exact.distance(pred.double(), target.double()), torch.tensor(torchaudio_distance, dtype=torch.float64),
        atol=1e-5, rtol=0)
    entries = [float(log_mel[0, 1, 3]) for log_mel in exact.log_mels(pred.double())]
    np.testing.assert_allclose(entries, torchaudio_log_mel_entry, atol=1e-5, rtol=0)
    # What training computes, float32, against the same in float64.
    torch.testing.assert_close(loss.distance(pred, target).double(), exact.distance(pred.double(), target.double()),
                               atol=1e-5, rtol=0)
    np.testing.assert_allclose([float(log_mel[0, 1, 3]) for log_mel in loss.log_mels(pred)], entries, atol=1e-5,
                               rtol=0)


def test_mel_loss_of_a_signal_with_itself_is_zero() -> None:
    audio = speech_like()
    loss = MultiScaleMelLoss()
    assert loss(audio, audio.clone()).item() == 0.0
    assert torch.equal(loss.distance(audio, audio.clone()), torch.zeros(2))


def test_mel_loss_grows_as_the_snr_falls() -> None:
    audio = speech_like(batch=1)
    noise = torch.randn(audio.shape, generator=torch.Generator().manual_seed(1))
    noise = noise * audio.square().mean().sqrt() / noise.square().mean().sqrt()
    loss = MultiScaleMelLoss()
    losses = [loss(audio + noise * 10 ** (-snr / 20), audio).item() for snr in (40, 30, 20, 10, 0)]
    assert losses[0] > 0
    assert all(a < b for a, b in itertools.pairwise(losses)), losses


def test_halving_the_level_costs_log10_2_so_the_loss_is_on_log_magnitudes() -> None:
    # With power=2 the answer would be 2 log10(2); with a linear (not log) mel it would depend on the level.
    audio = speech_like()
    distance = MultiScaleMelLoss().distance(0.5 * audio, audio)
    torch.testing.assert_close(distance, torch.full((2,), math.log10(2)), atol=1e-4, rtol=0)


def test_distance_is_per_item_and_the_loss_is_its_batch_mean() -> None:
    audio = speech_like(batch=3)
    distorted = audio.clone()
    distorted[1] *= 0.5
    loss = MultiScaleMelLoss()
    distance = loss.distance(distorted, audio)
    assert distance.shape == (3,)
    assert distance[0] == 0 and distance[2] == 0 and distance[1] > 0.3
    torch.testing.assert_close(loss(distorted, audio), distance.mean())


def test_mel_loss_under_bf16_autocast_is_computed_in_float32() -> None:
    audio = speech_like()
    noisy = audio + 0.01 * torch.randn(audio.shape, generator=torch.Generator().manual_seed(2))
    loss = MultiScaleMelLoss()
    exact = loss(noisy, audio)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        autocast = loss(noisy.bfloat16(), audio)
    assert autocast.dtype == torch.float32
    # Only the bf16 rounding of the input itself may differ.
    torch.testing.assert_close(autocast, loss(noisy.bfloat16().float(), audio), atol=0, rtol=0)
    assert abs(autocast.item() - exact.item()) < 0.01 * exact.item()


def test_mel_loss_gradient_reaches_the_prediction() -> None:
    audio = speech_like()
    pred = (0.8 * audio).requires_grad_(True)
    MultiScaleMelLoss()(pred, audio).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


@pytest.mark.parametrize(("loss", "largest"), [(MultiScaleMelLoss(), 1024), (MultiResolutionSTFTLoss(), 2048)])
def test_spectral_losses_refuse_audio_shorter_than_their_largest_window_and_mismatched_shapes(
        loss: torch.nn.Module, largest: int) -> None:
    assert loss.min_length == largest
    with pytest.raises(ValueError, match=f"at least {largest} samples"):
        loss(torch.zeros(1, largest - 24), torch.zeros(1, largest - 24))
    with pytest.raises(ValueError, match="shapes differ"):
        loss(torch.zeros(1, 4000), torch.zeros(1, 4001))
    with pytest.raises(ValueError, match="window_sizes"):
        type(loss)(window_sizes=())


def reference_stft_terms(pred: np.ndarray, target: np.ndarray, windows: tuple[int, ...]) -> tuple[float, float]:
    """Parallel WaveGAN's spectral convergence and log-magnitude L1 from librosa's STFT in float64."""
    convergence, log_l1 = [], []
    for n in windows:
        fake, real = (np.abs(librosa.stft(x.astype(np.float64), n_fft=n, hop_length=n // 4, window="hann",
                                          center=False)) for x in (pred, target))
        convergence.append(np.linalg.norm(real - fake) / np.linalg.norm(real))
        log_l1.append(np.abs(np.log(np.maximum(real, 1e-5)) - np.log(np.maximum(fake, 1e-5))).mean())
    return float(np.mean(convergence)), float(np.mean(log_l1))


def test_stft_loss_matches_a_librosa_reference() -> None:
    audio = speech_like(batch=1)
    noisy = audio + 0.02 * torch.randn(audio.shape, generator=torch.Generator().manual_seed(3))
    loss = MultiResolutionSTFTLoss()
    convergence, log_l1 = loss.terms(noisy, audio)
    expected = reference_stft_terms(noisy[0].numpy(), audio[0].numpy(), loss.window_sizes)
    assert (convergence.item(), log_l1.item()) == pytest.approx(expected, rel=1e-4)
    assert loss(noisy, audio).item() == pytest.approx(sum(expected), rel=1e-4)


def test_stft_loss_of_a_signal_with_itself_is_zero_and_halving_costs_one_half_and_ln_2() -> None:
    audio = speech_like()
    loss = MultiResolutionSTFTLoss()
    assert loss(audio, audio.clone()).item() == 0.0
    convergence, log_l1 = loss.terms(0.5 * audio, audio)
    assert convergence.item() == pytest.approx(0.5, abs=1e-5)  # a linear magnitude: ||S/2 - S|| / ||S||
    assert log_l1.item() == pytest.approx(math.log(2), abs=1e-4)  # natural log, every bin above the clamp


def test_stft_loss_sees_harmonics_moved_between_their_places_where_the_mel_loss_barely_does() -> None:
    # Harmonics 2-4 kHz of a 200 Hz voice against the same harmonics moved up 100 Hz, into the gaps: one mel band
    # there spans several harmonics, while a 1024-sample STFT bin is 15.6 Hz wide (the "blurred harmonics" fault).
    t = torch.arange(SAMPLE_RATE) / SAMPLE_RATE
    breath = 1e-3 * torch.randn(1, SAMPLE_RATE, generator=torch.Generator().manual_seed(4))  # above the log clamp

    def voice(shift_hz: float) -> torch.Tensor:
        harmonics = sum(torch.sin(2 * math.pi * (k * 200 + shift_hz) * t) / k**0.5 for k in range(10, 21))
        return 0.05 * harmonics[None] + breath

    target, moved = voice(0), voice(100)
    # A gain change of the same mel distance, for scale: it moves every bin alike, so both losses see it alike.
    mel, stft = MultiScaleMelLoss(), MultiResolutionSTFTLoss()
    quieter = target * 10 ** -mel(moved, target).item()
    assert mel(quieter, target).item() == pytest.approx(mel(moved, target).item(), rel=0.05)
    moved_ratio = stft(moved, target).item() / mel(moved, target).item()
    gain_ratio = stft(quieter, target).item() / mel(quieter, target).item()
    assert moved_ratio > 4 * gain_ratio, (moved_ratio, gain_ratio)


def test_stft_loss_under_bf16_autocast_is_computed_in_float32_and_its_gradient_reaches_the_prediction() -> None:
    audio = speech_like()
    pred = (0.8 * audio).requires_grad_(True)
    loss = MultiResolutionSTFTLoss()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        value = loss(pred, audio)
    assert value.dtype == torch.float32
    value.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_stft_loss_of_silence_as_the_target_is_finite() -> None:
    # The target's norm is clamped, so a silent crop gives a large but finite loss, not inf or NaN.
    loss = MultiResolutionSTFTLoss()
    assert math.isfinite(loss(0.01 * speech_like(batch=1), torch.zeros(1, 8000)).item())


def test_l1_waveform_loss_is_the_mean_absolute_difference() -> None:
    target = speech_like()
    assert l1_waveform_loss(target + 0.25, target).item() == pytest.approx(0.25, abs=1e-6)
    assert l1_waveform_loss(target, target).item() == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        l1_waveform_loss(target, target[:, :-1])


def outputs(logit_value: float, count: int = 3, feature_offset: float = 0.0) -> list[DiscriminatorOutput]:
    """`count` fake sub-discriminator outputs with constant logits and two deterministic feature maps."""
    generator = torch.Generator().manual_seed(0)
    return [
        DiscriminatorOutput(
            torch.full((2, 1, 5, 7), logit_value),
            [torch.randn(2, 4, 8, 3, generator=generator) + feature_offset for _ in range(2)],
        )
        for _ in range(count)
    ]


def test_discriminator_loss_is_zero_for_a_perfect_discriminator_and_two_per_head_when_fooled() -> None:
    assert discriminator_loss(outputs(1.0), outputs(0.0)).item() == 0.0
    assert discriminator_loss(outputs(0.0), outputs(1.0)).item() == pytest.approx(2.0 * 3)
    assert discriminator_loss(outputs(0.5), outputs(0.5)).item() == pytest.approx(0.5 * 3)


def test_generator_adversarial_loss_is_zero_when_fakes_are_called_real() -> None:
    assert generator_adversarial_loss(outputs(1.0)).item() == 0.0
    assert generator_adversarial_loss(outputs(0.0)).item() == pytest.approx(1.0 * 3)
    assert generator_adversarial_loss(outputs(0.5)).item() == pytest.approx(0.25 * 3)


def test_feature_matching_is_the_summed_l1_and_only_the_fake_side_gets_gradients() -> None:
    real, fake = outputs(1.0), outputs(0.0)
    assert feature_matching_loss(real, fake).item() == 0.0
    shifted = outputs(0.0, feature_offset=0.5)
    for output in shifted:
        for feature in output.features:
            feature.requires_grad_(True)
    for output in real:
        for feature in output.features:
            feature.requires_grad_(True)
    loss = feature_matching_loss(real, shifted)
    assert loss.item() == pytest.approx(0.5 * 2 * 3)  # 3 heads × 2 layers
    loss.backward()
    assert all(f.grad is not None for o in shifted for f in o.features)
    assert all(f.grad is None for o in real for f in o.features)


def test_adversarial_losses_refuse_mismatched_outputs() -> None:
    with pytest.raises(ValueError, match="one real and one fake"):
        discriminator_loss(outputs(1.0, count=3), outputs(0.0, count=2))
    with pytest.raises(ValueError, match="one real and one fake"):
        feature_matching_loss([], [])
