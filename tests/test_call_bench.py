"""codec-bench call on the bundled model and one short speech clip: the files, the fields, and that the playout
plan, our concealment and libopus's packet-level PLC behave as the benchmark says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sscodec.benchmarks.call import Network, plan_playout, render_opus
from sscodec.benchmarks.cli import main
from sscodec.benchmarks.opus_packets import OpusPackets
from sscodec.common.audio import read_audio
from sscodec.common.bundled import EXAMPLE_CLIP
from sscodec.stream.jitter import JitterSettings


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("speech")
    soundfile.write(folder / "clip.wav", read_audio(EXAMPLE_CLIP, 16000)[: 16000 * 3], 16000)
    return folder


def test_call_bench_writes_scores_for_every_network_and_method(speech: Path, tmp_path: Path) -> None:
    out = tmp_path / "call.json"
    main(["call", "--audio", str(speech), "--losses", "0,20", "--jitters", "0,40", "--json", str(out)])
    assert out.with_suffix(".md").read_text().startswith("# codec-bench call")
    assert out.with_suffix(".png").stat().st_size > 1000
    data = json.loads(out.read_text())
    assert [(r["loss"], r["pattern"], r["jitter_ms"]) for r in data["results"]] == [
        (0.0, "random", 0.0),
        (0.2, "random", 0.0),
        (0.2, "bursty", 0.0),
        (0.0, "random", 40.0),
        (0.2, "random", 40.0),
        (0.2, "bursty", 40.0),
    ]
    for row in data["results"]:
        assert set(row["methods"]) == {"codec_repeat", "codec_silence", "opus_plc"}
        for scores in row["methods"].values():
            assert np.isfinite(scores["pesq_wb"]["mean"]) and np.isfinite(scores["mel_distance"]["mean"])
    clean, lossy = data["results"][0]["methods"], data["results"][1]["methods"]
    # Without loss the two codec rows are the same audio; 20 % loss costs every method.
    assert clean["codec_repeat"] == clean["codec_silence"]
    for method in clean:
        assert lossy[method]["pesq_wb"]["mean"] < clean[method]["pesq_wb"]["mean"]
    assert 0.1 < data["results"][1]["network"]["concealed"] < 0.3
    assert "beats_silence_everywhere" in data["verdict"] and "libopus 1.6" in data["opus"]


def test_the_playout_plan_covers_every_frame_once_in_order() -> None:
    for network in (Network(0.2, "bursty", 60.0), Network(0.0, "random", 60.0), Network(0.1, "random", 0.0)):
        playout = plan_playout(500, network.conditions(3), JitterSettings(20.0))
        frames = [n for n, _ in playout.steps if n is not None]
        assert frames == list(range(frames[0], 500))  # each once, in order (up to a lost first packet)
        assert playout.stretched == sum(1 for n, _ in playout.steps if n is None)
        missing = sum(1 for n, here in playout.steps if n is not None and not here)
        assert missing == playout.concealed_frames
    assert plan_playout(50, Network(0.0, "random", 0.0).conditions(0), JitterSettings(20.0)).steps == [
        (n, True) for n in range(50)
    ]


def test_libopus_conceals_lost_packets_itself() -> None:
    audio = read_audio(EXAMPLE_CLIP, 16000)[:32000]
    opus = OpusPackets(16000, 8.0, 320)
    packets = opus.encode(audio)
    assert len(packets) == 100 and 10 < np.mean([len(p) for p in packets]) < 30  # about 8 kbps
    whole = render_opus([(n, True) for n in range(100)], packets, opus)
    lossy = render_opus([(n, n % 10 != 5) for n in range(100)], packets, opus)
    # Concealed frames are not silence: libopus extrapolates them from what it decoded before.
    concealed = np.concatenate(
        [lossy[n * 320 : (n + 1) * 320] for n in range(5, 100, 10) if n * 320 < lossy.size]
    )
    assert np.sqrt(np.mean(concealed**2)) > 0.1 * np.sqrt(np.mean(whole**2))
    assert np.corrcoef(whole[: 30 * 320], audio[: 30 * 320])[0, 1] > 0.8  # the lookahead is removed
    opus.close()
