"""The streaming data pipeline: cached manifests, crops read from disk equal to crops of decoded files, batches
that do not depend on the number of workers, mp3 decoded once and cached, and augmentation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import sscodec.train.manifest as manifest_module
from sscodec.train.augment import (
    Augmentation,
    add_noise,
    apply_gain,
    augment,
    coloured_noise,
    lowpass,
    resample_band_limit,
)
from sscodec.train.data import Corpus, Crop, CropDataset, CropPlan, CropReader, NoisePool, batches
from sscodec.train.manifest import load_manifest
from tests.conftest import telugu_train_clips

RATE = 16_000


def _tone_files(folder: Path, count: int, rate: int = RATE, suffix: str = ".wav") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        soundfile.write(folder / f"{index:02d}{suffix}", 0.1 * rng.standard_normal(rate + 1000 * index), rate)
    return folder


def _dataset(folder: Path, cache: Path, in_memory: bool = False, **augmentation: float) -> CropDataset:
    manifest = load_manifest(folder, cache, min_seconds=0.1, progress=False)
    corpus = Corpus(folder, manifest.entries, 1.0, manifest.skipped, 0, manifest.seconds, len(manifest.entries))
    reader = CropReader(RATE, cache, in_memory=in_memory)
    noise = NoisePool(manifest, reader) if augmentation.get("noise_prob") else None
    return CropDataset(CropPlan([corpus], 8000, RATE, seed=5), reader, 4, augmentation=Augmentation(**augmentation),
                       noise=noise)


def test_the_manifest_is_cached_and_reprobes_only_changed_files(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _tone_files(tmp_path / "data", 3)
    first = load_manifest(folder, tmp_path / "cache", min_seconds=0.1, progress=False)
    probed = []
    real_probe = manifest_module.probe_audio
    monkeypatch.setattr(manifest_module, "probe_audio", lambda path: probed.append(path) or real_probe(path))
    assert load_manifest(folder, tmp_path / "cache", min_seconds=0.1, progress=False).entries == first.entries
    assert probed == []
    soundfile.write(folder / "01.wav", np.zeros(3 * RATE), RATE)  # replaced: another size and time
    soundfile.write(folder / "03.wav", np.zeros(RATE), 8000)  # added
    os.remove(folder / "00.wav")  # removed
    again = load_manifest(folder, tmp_path / "cache", min_seconds=0.1, progress=False)
    assert sorted(p.name for p in probed) == ["01.wav", "03.wav"]
    assert [(e.path.name, e.frames, e.sample_rate) for e in again.entries] == [
        ("01.wav", 3 * RATE, RATE), ("02.wav", RATE + 2000, RATE), ("03.wav", RATE, 8000)]


def test_batches_are_the_same_from_disk_or_memory_and_with_any_number_of_workers(tmp_path: Path) -> None:
    folder = telugu_train_clips(tmp_path / "data", 8)
    streaming = _dataset(folder, tmp_path / "cache")
    reference = [_dataset(folder, tmp_path / "cache", in_memory=True)[step] for step in range(3, 9)]
    for workers in (0, 2):
        loader = batches(streaming, start_step=3, num_workers=workers)
        got = [next(loader) for _ in range(6)]
        del loader
        assert all(torch.equal(a, b) for a, b in zip(got, reference, strict=True)), workers
    assert not torch.equal(reference[0], reference[1])  # steps differ
    assert reference[0].abs().amax(dim=1).min() > 0.01  # crops of speech, not padding


def test_mp3_is_decoded_once_cached_and_cropped_like_the_whole_file(tmp_path: Path) -> None:
    if "MP3" not in soundfile.available_formats():
        pytest.skip("this libsndfile cannot write mp3")
    folder = _tone_files(tmp_path / "data", 1, rate=22_050, suffix=".mp3")
    (entry,) = load_manifest(folder, tmp_path / "cache", min_seconds=0.1, progress=False).entries
    reader = CropReader(RATE, tmp_path / "cache")
    crop = reader.read(Crop(entry, 3000, 5000))
    (cached,) = (tmp_path / "cache" / "decoded").glob("*.npy")
    whole = CropReader(RATE, tmp_path / "cache", in_memory=True).read(Crop(entry, 0, entry.frames_at(RATE)))
    np.testing.assert_array_equal(crop, whole[3000:8000])
    np.testing.assert_array_equal(CropReader(RATE, tmp_path / "cache").read(Crop(entry, 3000, 5000)), crop)  # cached
    assert cached.stat().st_size >= 4 * entry.frames_at(RATE)


def test_gain_band_limits_and_noise_do_what_they_say() -> None:
    rng = np.random.default_rng(1)
    speech = (0.1 * rng.standard_normal(RATE)).astype(np.float32)
    rms = lambda x: float(np.sqrt(np.mean(np.square(x))))
    assert 20 * np.log10(rms(apply_gain(speech, -30.0)) / rms(speech)) == pytest.approx(-30.0, abs=0.01)
    assert np.abs(apply_gain(speech, 40.0)).max() == 1.0  # clipped like a recording

    def energy_above(x: np.ndarray, hz: float) -> float:
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        return float(spectrum[np.fft.rfftfreq(len(x), 1 / RATE) > hz].sum() / spectrum.sum())

    assert energy_above(speech, 4000) > 0.4  # white noise: half its energy is above 4 kHz
    for band_limit in (lowpass, resample_band_limit):
        limited = band_limit(speech, RATE, 4000.0)
        assert limited.shape == speech.shape and limited.dtype == np.float32
        assert energy_above(limited, 4000) < 1e-3, band_limit.__name__
        assert energy_above(limited, 3000) < energy_above(speech, 3000)
    noise = rng.standard_normal(RATE).astype(np.float32)
    noisy = add_noise(speech, noise, 20.0)
    assert 10 * np.log10(np.mean(speech**2) / np.mean((noisy - speech) ** 2)) == pytest.approx(20.0, abs=0.01)


def test_augment_is_a_function_of_its_generator_and_off_by_default() -> None:
    speech = (0.1 * np.random.default_rng(2).standard_normal(8000)).astype(np.float32)
    noise = lambda rng, n: rng.standard_normal(n).astype(np.float32)
    everything = Augmentation(gain_prob=1.0, lowpass_prob=1.0, noise_prob=1.0)
    first = augment(speech, np.random.default_rng(7), everything, RATE, noise)
    assert np.array_equal(first, augment(speech, np.random.default_rng(7), everything, RATE, noise))
    assert not np.array_equal(first, augment(speech, np.random.default_rng(8), everything, RATE, noise))
    assert not np.allclose(first, speech, atol=1e-3)
    assert np.array_equal(augment(speech, np.random.default_rng(7), Augmentation(), RATE), speech)
    with pytest.raises(ValueError, match="needs a noise source"):
        augment(speech, np.random.default_rng(7), Augmentation(noise_prob=0.5), RATE)


@pytest.mark.parametrize(("slope", "low_over_high_db"), [(0.0, 0.0), (3.0, 3.0 * 4), (6.0, 6.0 * 4)])
def test_coloured_noise_has_its_level_and_slope(slope: float, low_over_high_db: float) -> None:
    noise = coloured_noise(np.random.default_rng(0), 10 * RATE, slope, -60.0)
    assert noise.dtype == np.float32 and noise.shape == (10 * RATE,)
    assert 10 * np.log10(np.mean(np.square(noise, dtype=np.float64))) == pytest.approx(-60.0, abs=0.01)
    power = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(len(noise), 1 / RATE)
    band = lambda lo: power[(freqs >= lo) & (freqs < 2 * lo)].mean()  # one octave from `lo`
    # From the 250-500 Hz octave to the 4-8 kHz one is four octaves.
    assert 10 * np.log10(band(250) / band(4000)) == pytest.approx(low_over_high_db, abs=0.5)


def test_quiet_crops_replace_speech_with_silence_or_faint_noise() -> None:
    speech = (0.1 * np.random.default_rng(2).standard_normal(8000)).astype(np.float32)
    quiet = Augmentation(quiet_prob=1.0, gain_prob=1.0)
    levels, silent = [], 0
    for seed in range(200):
        out = augment(speech, np.random.default_rng(seed), quiet, RATE)
        assert out.shape == speech.shape and out.dtype == np.float32
        power = np.mean(np.square(out, dtype=np.float64))
        if power == 0:
            silent += 1
        else:
            levels.append(10 * np.log10(power))
    assert 0.15 < silent / 200 < 0.35  # silence_share 0.25
    assert -80.01 < min(levels) and max(levels) < -39.99 and max(levels) - min(levels) > 30
    never = Augmentation(gain_prob=1.0)
    assert all(np.mean(np.square(augment(speech, np.random.default_rng(s), never, RATE))) > 0 for s in range(20))


def test_augmented_batches_are_a_function_of_the_step(tmp_path: Path) -> None:
    folder = _tone_files(tmp_path / "data", 4)
    settings = {"gain_prob": 0.5, "lowpass_prob": 0.5, "noise_prob": 0.5}
    plain = _dataset(folder, tmp_path / "cache")
    augmented = _dataset(folder, tmp_path / "cache", **settings)
    again = _dataset(folder, tmp_path / "cache", **settings)
    for step in (0, 7):
        assert torch.equal(augmented[step], again[step])
        assert not torch.equal(augmented[step], plain[step])
    loader = batches(again, start_step=7, num_workers=1)
    assert torch.equal(next(loader), augmented[7])
