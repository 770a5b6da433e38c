"""DNSMOS P.835 (SIG, BAK, OVRL) and P.808 MOS: speech quality as a listener would rate it, with no reference.

The two ONNX models are Microsoft's (DNS Challenge, CC-BY-4.0; C. K. A. Reddy, V. Gopal, R. Cutler, ICASSP 2021
and 2022), read from `../shared/models/dnsmos/` or any folder holding them. The procedure follows the published
evaluation script as `../shared/models/dnsmos/README.md` records it: 9.01 s windows hopped by 1 s (shorter clips
repeated end to end), the P.808 input a 120-band mel power spectrogram (n_fft 321, hop 160) in dB relative to
its maximum mapped as (dB + 40) / 40, the P.835 raw outputs calibrated with the fixed (non-personalised)
polynomials, and the window scores averaged.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import onnxruntime as ort

from sscodec.benchmarks.errors import BenchError
from sscodec.common.errors import first_line

SAMPLE_RATE = 16000
WINDOW_SAMPLES = int(9.01 * SAMPLE_RATE)  # 144160
HOP_SAMPLES = SAMPLE_RATE
P835_FILE, P808_FILE = "sig_bak_ovr.onnx", "model_v8.onnx"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "models" / "dnsmos"
METRICS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")
# Calibration polynomials of the published script, highest power first (np.polyval order).
_SIG = (-0.08397278, 1.22083953, 0.0052439)
_BAK = (-0.13166888, 1.60915514, -0.39604546)
_OVRL = (-0.06766283, 1.11546468, 0.04602535)


class Dnsmos:
    """Scores 16 kHz mono clips; holds both ONNX sessions (one thread each, as the other benchmarks run)."""

    def __init__(self, model_dir: Path = DEFAULT_DIR) -> None:
        paths = [model_dir / P835_FILE, model_dir / P808_FILE]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise BenchError(f"DNSMOS model not found: {', '.join(missing)} (give --dnsmos-dir, or --no-dnsmos to "
                             "score without it)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.p835, self.p808 = (_session(p, options) for p in paths)

    def score(self, audio: np.ndarray) -> dict[str, float]:
        """Mean over 9.01 s windows of calibrated SIG, BAK, OVRL and P.808 MOS for mono float audio [T]."""
        if audio.ndim != 1 or audio.size == 0:
            raise ValueError(f"DNSMOS needs non-empty mono audio [T], got shape {audio.shape}")
        audio = audio.astype(np.float32)
        if audio.size < WINDOW_SAMPLES:
            audio = np.tile(audio, -(-WINDOW_SAMPLES // audio.size))
        # The published script's count: whole seconds of audio less the window length, plus one.
        hops = max(1, int(np.floor(audio.size / SAMPLE_RATE) - WINDOW_SAMPLES / SAMPLE_RATE) + 1)
        windows = np.stack([audio[i * HOP_SAMPLES : i * HOP_SAMPLES + WINDOW_SAMPLES] for i in range(hops)])
        raw = self.p835.run(None, {"input_1": windows})[0]
        features = np.stack([_p808_features(w[:-160]) for w in windows])
        p808 = self.p808.run(None, {"input_1": features})[0][:, 0]
        return {
            "dnsmos_sig": float(np.polyval(_SIG, raw[:, 0]).mean()),
            "dnsmos_bak": float(np.polyval(_BAK, raw[:, 1]).mean()),
            "dnsmos_ovrl": float(np.polyval(_OVRL, raw[:, 2]).mean()),
            "dnsmos_p808": float(p808.mean()),
        }


def _p808_features(audio: np.ndarray) -> np.ndarray:
    """[frames, 120] float32: the published script's log-mel input of the P.808 model."""
    mel = librosa.feature.melspectrogram(y=audio, sr=SAMPLE_RATE, n_fft=321, hop_length=160, n_mels=120)
    return ((librosa.power_to_db(mel, ref=np.max) + 40) / 40).T.astype(np.float32)


def _session(path: Path, options: ort.SessionOptions) -> ort.InferenceSession:
    """A CPU session of one DNSMOS model; BenchError naming a file ONNX Runtime cannot load (found from outside: a
    damaged one was a traceback)."""
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    # ONNX Runtime's pybind exceptions (InvalidProtobuf, Fail, NoSuchFile, ...) share no public base but Exception.
    except Exception as error:  # noqa: BLE001
        raise BenchError(f"{path}: not a loadable DNSMOS model ({first_line(error)})") from None
