"""The bad signs, each named for a known validation history, and what the monitor writes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from sscodec.train.monitor import Monitor, Validation, bad_signs, best_selection, better


def _validation(step: int, epoch: float, snr: float = 3.0, amplitude: float = 0.9, mel: float = 0.5,
                pesq: float | None = None, pesq_at: dict[str, float] | None = None) -> Validation:
    return Validation(
        step=step, epoch=epoch, loss=0.1, recon=0.05, vq=0.01, mel_distance=mel, snr_db=snr, si_sdr_db=snr,
        amplitude_ratio=amplitude, codebook_perplexity=[10.0], codebook_used_fraction=[0.5], pesq_wb=pesq,
        pesq_wb_at=pesq_at or {},
    )


def _improving(n: int) -> list[Validation]:
    return [_validation(100 * i, i / 2, mel=1.0 - 0.1 * i) for i in range(n)]


def test_a_healthy_history_has_no_bad_sign() -> None:
    assert bad_signs(_improving(6)) == []


def test_negative_snr_is_a_bad_sign_only_after_the_first_epoch() -> None:
    assert bad_signs([_validation(50, 0.5, snr=-4.0)]) == []
    (sign,) = bad_signs([_validation(200, 1.0, snr=-1.54)])
    assert "SNR is negative after the first epoch" in sign and "-1.5 dB" in sign


def test_low_amplitude_is_a_bad_sign_from_the_start() -> None:
    (sign,) = bad_signs([_validation(0, 0.0, amplitude=0.3)])
    assert "amplitude is 30% of the input" in sign
    assert bad_signs([_validation(0, 0.0, amplitude=0.5)]) == []


def test_an_output_far_louder_than_the_input_is_a_bad_sign_from_the_start() -> None:
    # Found from outside: at --learning_rate 1 the output was 25 times the input (loss 2.8e14), without a sign.
    (sign,) = bad_signs([_validation(20, 0.1, amplitude=25.0)])
    assert sign == ("bad sign: output amplitude is 25.0 times the input's (over 2): training is diverging; a lower "
                    "--learning_rate may help")
    assert bad_signs([_validation(20, 0.1, amplitude=2.0)]) == []
    assert bad_signs([_validation(0, 0.0, amplitude=25.0)]) == []  # untrained weights: no sign of training


def test_no_improvement_in_mel_over_the_patience_window_is_a_bad_sign() -> None:
    history = _improving(3) + [_validation(300 + i, 2.0, mel=0.8 + 0.01 * i) for i in range(3)]
    (sign,) = bad_signs(history, patience=3)
    assert "no improvement in mel distance over the last 3 validations" in sign
    # One new best within the window is improvement; a short history is never judged.
    history[-1] = _validation(400, 2.0, mel=0.7)
    assert bad_signs(history, patience=3) == []
    flat = [_validation(i, 0.1 * i, mel=0.5) for i in range(3)]
    assert bad_signs(flat, patience=3) == []


def test_pesq_selection_is_the_highest_mean_over_the_codebook_counts() -> None:
    low_mel_low_pesq = _validation(0, 0.0, mel=0.1, pesq=2.0, pesq_at={"6": 1.6})
    high_mel_high_pesq = _validation(1, 0.0, mel=0.3, pesq=2.1, pesq_at={"6": 1.7})
    assert (low_mel_low_pesq.select_by, low_mel_low_pesq.selection) == ("pesq", pytest.approx(1.8))
    assert best_selection([low_mel_low_pesq, high_mel_high_pesq]) == pytest.approx(1.9)
    # By mel the other way round; NaN (PESQ scored no clip) never wins, and anything finite beats none yet.
    assert best_selection([_validation(0, 0.0, mel=0.1), _validation(1, 0.0, mel=0.3)]) == 0.1
    assert not better(float("nan"), 1.0, "pesq") and not better(float("nan"), float("nan"), "mel")
    assert better(1.2, float("nan"), "pesq") and better(0.4, float("inf"), "mel")


def test_pesq_that_stops_improving_or_scores_nothing_is_a_bad_sign() -> None:
    history = [_validation(i, 0.1 * i, pesq=1.5 + 0.1 * i) for i in range(3)]
    history += [_validation(3 + i, 0.5, pesq=1.6) for i in range(3)]
    (sign,) = bad_signs(history, patience=3)
    assert "no improvement in PESQ-WB over the last 3 validations" in sign
    history[-1] = _validation(6, 0.6, pesq=1.8)
    assert bad_signs(history, patience=3) == []
    (sign,) = bad_signs([_validation(0, 0.0, pesq=float("nan"))])
    assert "PESQ-WB scored none of the validation clips" in sign and "this validation cannot choose best.pt" in sign


def test_several_signs_are_all_named() -> None:
    history = [_validation(i, 1.0 + i, snr=-2.0, amplitude=0.2, mel=0.5) for i in range(5)]
    signs = bad_signs(history, patience=3)
    assert len(signs) == 3
    assert "SNR is negative" in signs[0] and "amplitude is 20%" in signs[1] and "no improvement" in signs[2]


def test_monitor_appends_one_json_row_per_validation_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = Monitor(tmp_path, {"preset": "tiny"}, use_wandb=False, name="test")
    examples = {"val_0/decoded": torch.zeros(320)}
    with caplog.at_level(logging.WARNING, logger="codec-train"):
        monitor.validation(_validation(0, 0.0), examples, 16_000)
        monitor.validation(_validation(100, 1.0, snr=-3.0), examples, 16_000)
    monitor.close()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 100]
    assert rows[1]["snr_db"] == -3.0 and rows[1]["codebook_used_fraction"] == [0.5]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["bad sign: SNR is negative after the first epoch (-3.0 dB)"]
    assert any((tmp_path / "tensorboard").iterdir())
