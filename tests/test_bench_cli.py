"""codec-bench latency, quality and soak on a tiny random-weight export and two short clips: files and fields."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from sscodec.benchmarks.cli import main
from sscodec.benchmarks.latency import torch_cases
from sscodec.benchmarks.model_source import load_model, precision_variants
from sscodec.codec.checkpoint import save_codec
from sscodec.codec.config import preset
from sscodec.codec.model import Codec
from sscodec.common.text import duration
from sscodec.export.context_model import write_context_model
from sscodec.export.onnx_export import export_codec
from sscodec.export.probe import probe_signal
from sscodec.export.tables import write_tables
from sscodec.stream.model import CodecModel

MACHINE_KEYS = {"cpu", "logical_cores", "gpu", "libraries", "onnxruntime_providers"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight export (the four ONNX files), its checkpoint saved one level up as tiny.pt."""
    torch.manual_seed(0)
    model = Codec(preset("tiny"))
    out = tmp_path_factory.mktemp("tiny")
    export_codec(model, out)
    save_codec(model, out.parent / "tiny.pt")
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two short speech-like clips of different lengths, neither a whole number of frames."""
    folder = tmp_path_factory.mktemp("clips")
    for i, seconds in enumerate((1.23, 0.91)):
        soundfile.write(folder / f"clip{i}.wav", probe_signal(16000, seconds, seed=i), 16000)
    return folder


def run(args: list[str]) -> None:
    """Run codec-bench in-process; success returns without exiting."""
    main(args)


def read_results(json_path: Path) -> dict:
    """The JSON, after checking that its Markdown and PNG were written beside it."""
    assert json_path.with_suffix(".md").read_text().startswith("# codec-bench")
    assert json_path.with_suffix(".png").stat().st_size > 1000
    data = json.loads(json_path.read_text())
    assert MACHINE_KEYS <= set(data["machine"])
    return data


def test_latency_writes_every_case(tiny: Path, clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # No checkpoint in the folder: fp16/int8 and PyTorch are skipped with their reasons (PyTorch is covered below).
    run(["latency", "--model", str(tiny), "--audio", str(clips), "--json", str(tmp_path / "lat.json")])
    # Minutes of timing are not silent: each stage says what it measures as it starts.
    stages = [line.split(":")[0] for line in capsys.readouterr().err.splitlines() if line.endswith("...")]
    assert stages == ["timing ONNX Runtime", "timing PyTorch eager ...",
                      "streamed against the offline graphs and libopus, side by side ...",
                      "where a streamed frame's time goes (benchmarks/stream_cost.py) ...",
                      "profiling the stream graphs ..."]
    data = read_results(tmp_path / "lat.json")
    assert data["algorithmic_latency_ms"] == 20.0
    assert data["model"]["parameters"] > 0 and data["model"]["size_bytes"]["encoder_stream.onnx"] > 0
    measured = [c for c in data["cases"] if "total" in c]
    assert {c["chunk_frames"] for c in measured} == {1, 2, 4}
    for case in measured:
        assert case["total"]["count"] >= 1000
        assert {"p50", "p95", "p99", "max", "rtf"} <= set(case["encode"]) & set(case["decode"])
        assert case["warmup"]["chunks"] > 0
    skipped = {(c["backend"], c["precision"], c["device"]) for c in data["cases"] if "skipped" in c}
    assert ("onnxruntime", "int8", "cpu") in skipped and ("pytorch", "fp32", "cpu") in skipped
    # Found from outside: the CUDA case's reason advised codec-stream's --provider, which codec-bench lacks.
    assert not any("--provider" in c["skipped"] for c in data["cases"] if "skipped" in c)
    assert data["target"]["rtf"] is not None
    assert data["profile"]["encoder_stream"]["ops"]
    # The same clip streamed, through the offline graphs and through libopus, with both ratios.
    comparison = data["comparison"]
    assert comparison["libopus"].startswith("libopus ") and comparison["clip_seconds"] == 10.0
    info = CodecModel(tiny).info
    half = info.n_codebooks // 2
    assert set(comparison["ways"]) == {
        "stream, 1-frame chunks", "offline graphs", "libopus 8 kbps", "libopus 12 kbps",
        f"stream, 1-frame chunks, {half} of {info.n_codebooks} codebooks ({info.bitrate_kbps(half):g} kbps)",
    }
    assert all(way["ms_per_frame"] > 0 for way in comparison["ways"].values())
    assert all(ratio["wall"] > 0 for ratio in comparison["ratios"].values())
    assert "streamed 1-frame chunks / libopus 12 kbps, per frame" in (tmp_path / "lat.md").read_text()
    # Where a streamed frame's time goes: per graph the fit, its node count and the weights it reads per call.
    cost = data["stream_cost"]
    assert cost["dispatch_us_per_node"] > 0
    for graph in cost["graphs"].values():
        assert graph["nodes_after_optimisation"] > 10 and graph["weight_bytes_per_call"] > 0
        per_call = graph["per_call_us_by_chunk"]
        assert per_call["8"] > per_call["1"] > 0 and graph["offline_us_per_frame"] > 0
    summary = cost["summary"]
    assert summary["floor_ratio"] > 1
    assert sum(summary["us"].values()) == pytest.approx(summary["streamed_us_per_frame"])
    assert summary["stream_over_offline"] == pytest.approx(
        summary["streamed_us_per_frame"] / summary["us"]["offline_per_frame"]
    )
    report = (tmp_path / "lat.md").read_text()
    assert "Where a streamed 1-frame chunk's time goes" in report
    # Each file's size in MB (found from outside: the line printed a Python dict).
    sizes = ", ".join(f"{name} {(tiny / name).stat().st_size / 1e6:.2f} MB" for name in data["model"]["size_bytes"])
    assert f"(all files: {sizes})." in report and "{" not in report.split("Model:")[1].split("\n")[0]


def test_pytorch_eager_cases(tiny: Path) -> None:
    cases = torch_cases(load_model(tiny.parent / "tiny.pt"), probe_signal(16000, 1.0), chunks=3)
    cpu = [c for c in cases if c["device"] == "cpu"]
    assert cpu and all(c["total"]["count"] == 3 for c in cpu)
    assert all("skipped" in c for c in cases if c["device"] == "cuda") != torch.cuda.is_available()


def test_quality_codec_opus_and_dnsmos_per_set(tiny: Path, clips: Path, tmp_path: Path) -> None:
    # So the codec's entropy- and context-coded files can be measured too (a small context model: 1 epoch).
    write_tables(tiny, sorted(clips.iterdir()))
    write_context_model(tiny, sorted(clips.iterdir()), hidden=16, epochs=1, progress=lambda _: None)
    args = ["quality", "--model", str(tiny), "--audio", str(clips), "--codebooks", "6,12", "--opus-kbps", "8"]
    run([*args, "--json", str(tmp_path / "q.json")])
    data = read_results(tmp_path / "q.json")
    (clip_set,) = data["sets"]
    assert clip_set["name"] == clips.name and clip_set["clips"] == 2
    assert data["opus_version"].startswith("libopus ")
    (reference,) = [c for c in clip_set["conditions"] if c["codec"] == "input"]
    # The input against itself: a perfect reference score, and DNSMOS of the speech as it came.
    assert reference["summary"]["snr_db"]["mean"] > 60 and reference["summary"]["pesq_wb"]["mean"] > 4.5
    assert 1.0 <= reference["summary"]["dnsmos_ovrl"]["mean"] <= 5.0
    codec = [c for c in clip_set["conditions"] if c["codec"] == "codec"]
    assert [c["kbps"] for c in codec] == [3.0, 6.0]
    samples = [soundfile.info(clips / name).frames for name in ("clip0.wav", "clip1.wav")]
    for condition in codec:
        # The raw files' real size, from the format: header (44 bytes, the model's name, a CRC) and, per packet of
        # at most 50 frames, a record (length, CRC), an 8-byte packet header and the 10-bit codes.
        q, frames = condition["codebooks"], [-(-n // 320) for n in samples]
        raw_bytes = sum(48 + len(tiny.name) + sum(16 + -(-q * min(50, f - s) * 10 // 8) for s in range(0, f, 50))
                        for f in frames)
        spent = condition["file_kbps"]
        assert spent["raw"] == pytest.approx(8 * raw_bytes / (sum(samples) / 16000) / 1000)
        assert spent["raw"] > condition["kbps"] and spent["entropy"] <= spent["raw"]
        assert spent["context"] <= spent["raw"]  # a packet the context model would grow is stored raw
        assert set(condition["per_clip"]) == {"clip0.wav", "clip1.wav"}
        assert {"snr_db", "si_sdr_db", "mel_distance", "pesq_wb", "stoi", "amplitude_ratio", "dnsmos_ovrl",
                "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"} <= set(condition["summary"])
    (opus,) = [c for c in clip_set["conditions"] if c["codec"] == "opus"]
    # The real rate counts the Ogg headers too, which on these 1 s clips add several kbps to the 8 asked.
    assert opus["ogg_kbps"] > 8 * 0.9 and np.isfinite(opus["summary"]["mel_distance"]["mean"])
    assert (tmp_path / "q_spectrograms.png").stat().st_size > 10_000
    report = (tmp_path / "q.md").read_text()
    assert "codec 6 beats Opus 8" in report and f"raw {codec[1]['file_kbps']['raw']:.2f}, entropy " in report
    assert f"context {codec[1]['file_kbps']['context']:.2f} kbps" in report
    # The targets table names all three of the codec's rates (found from outside: context coding was left out).
    spent = codec[1]["file_kbps"]
    assert f"| {spent['raw']:.2f}, {spent['entropy']:.2f}, {spent['context']:.2f} / {opus['ogg_kbps']:.2f} |" in report


def test_quality_says_which_clips_were_upsampled_or_mixed_down(tiny: Path, tmp_path: Path, capsys) -> None:
    # Found from outside: a folder of 8 kHz and stereo clips was scored without a word, its upsampled narrowband
    # input and outputs compared as if they were wideband speech.
    folder = tmp_path / "phone"
    folder.mkdir()
    soundfile.write(folder / "narrow.wav", probe_signal(8000, 1.2, seed=1), 8000)
    soundfile.write(folder / "narrow2.flac", probe_signal(8000, 1.1, seed=2), 8000)
    soundfile.write(folder / "stereo.wav", np.stack([probe_signal(16000, 1.0, seed=3)] * 2, axis=1), 16000)
    soundfile.write(folder / "plain.wav", probe_signal(16000, 1.0, seed=4), 16000)
    run(["quality", "--model", str(tiny), "--audio", str(folder), "--codebooks", "2", "--opus-kbps", "8",
         "--no-dnsmos", "--json", str(tmp_path / "q.json")])
    note = ("note: phone: 2 of 4 clips are at 8000 Hz, upsampled to 16000 Hz (their band above 4000 Hz is empty, "
            "in the input as in every output); 1 has 2 channels, mixed down to mono")
    assert note in capsys.readouterr().err.splitlines()
    (clip_set,) = read_results(tmp_path / "q.json")["sets"]
    assert clip_set["notes"] == [note.removeprefix("note: phone: ")]
    assert f"Note: {clip_set['notes'][0]}." in (tmp_path / "q.md").read_text()


def test_soak_short(tiny: Path, clips: Path, tmp_path: Path) -> None:
    run(
        [
            "soak",
            "--model",
            str(tiny),
            "--audio",
            str(clips),
            "--hours",
            "0.001",
            "--json",
            str(tmp_path / "s.json"),
        ]
    )
    soak = read_results(tmp_path / "s.json")["soak"]
    assert soak["length_exact"] and soak["output_samples"] == soak["input_samples"]
    assert soak["input_samples"] % 320 != 0
    assert len(soak["segments"]) == 10 and all(s["finite"] for s in soak["segments"])
    assert soak["rss_start_mb"] > 0 and soak["rss_end_mb"] > 0
    # 3.6 s are about 18 chunks a segment: too few for a p99, so no verdict on drift (found from outside: "DRIFT",
    # on the one slow chunk among a segment's 18 that such a "p99" is).
    fewest = min(s["chunks"] for s in soak["segments"])
    assert 15 <= fewest <= 18 and soak["p99_drift"] is None
    assert f"too short to tell ({fewest} chunks a segment; a p99 needs 100)" in (tmp_path / "s.md").read_text()
    # A short run's wall time in tenths (found from outside: "in 0 s wall").
    assert f"in {duration(soak['wall_seconds'])} wall." in (tmp_path / "s.md").read_text()
    assert [duration(s) for s in (0.44, 9.94, 9.97, 358.2)] == ["0.4 s", "9.9 s", "10 s", "358 s"]


def test_missing_model_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["soak", "--model", str(tmp_path / "nope"), "--audio", str(tmp_path)])
    assert exit_info.value.code == 2  # a usage error, as codec-encode and codec-stream make it
    err = capsys.readouterr().err.strip()
    assert err.startswith("codec-bench: error:") and "\n" not in err


@pytest.mark.parametrize(("codebooks", "message"), [
    ("6-3", "'6-3': the range is empty (write the smaller number first)"),
    ("0", "codebook counts must be in 1..12"),
    ("13", "codebook counts must be in 1..12"),
    ("1-13", "codebook counts must be in 1..12"),
])
def test_quality_codebooks_outside_the_model_is_a_usage_error(
    codebooks: str, message: str, clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bundled 12-codebook model: a reversed range used to measure only Opus and exit 0."""
    with pytest.raises(SystemExit) as exit_info:  # --json: a run that wrongly goes ahead writes in tmp_path
        main(["quality", "--codebooks", codebooks, "--audio", str(clips), "--no-dnsmos", "--json",
              str(tmp_path / "q.json")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.count("\n") == 1 and err.startswith("codec-bench: error: Invalid value for --codebooks: "), err
    assert message in err and "Traceback" not in err, err


def test_no_subcommand_prints_the_usage_as_click_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith("Usage: codec-bench [OPTIONS] COMMAND [ARGS]...\n"), err
    assert "\nCommands:\n" in err and "codec-bench: error:" not in err and "Traceback" not in err, err


def test_help_summary_names_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--help"])  # returns: run_cli does not exit on success
    out = capsys.readouterr().out
    summary = " ".join(out.split("Options:")[0].split())
    for name in ("latency", "quality", "soak", "training", "live", "call", "curve", "heldout"):
        assert name in summary, summary


def test_results_go_to_the_checkout_or_else_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sscodec.benchmarks import results

    assert results.result_paths("latency").json == Path(results.__file__).resolve().parent / "results" / "latency.json"
    installed = tmp_path / "site-packages" / "sscodec" / "benchmarks"  # a wheel: no pyproject.toml above it
    installed.mkdir(parents=True)
    monkeypatch.setattr(results, "_PACKAGE_DIR", installed)
    monkeypatch.chdir(tmp_path)
    assert results.result_paths("latency").json == tmp_path / "benchmarks" / "results" / "latency.json"


def test_heldout_lists_every_clip_of_every_held_out_speaker(capsys: pytest.CaptureFixture[str]) -> None:
    from sscodec.benchmarks.heldout import SHARED_DATA, TELUGU_VAL, clips_by_speaker, validation_sets

    if not (SHARED_DATA / "extra").is_dir():
        pytest.skip("shared cross-domain data not found")
    main(["heldout"])
    captured = capsys.readouterr()
    listed = {Path(line) for line in captured.out.splitlines()}
    sets = {name: clips for name, clips in validation_sets().items() if name != TELUGU_VAL}
    assert all(clip in listed for clips in sets.values() for clip in clips)
    for clips in sets.values():  # a speaker is wholly listed or wholly not: none is split across the line
        for files in clips_by_speaker(clips[0].parent).values():
            assert len({clips[0].parent / name in listed for name in files}) == 1
    assert {path.parent for path in listed} == {clips[0].parent for clips in sets.values()}
    assert captured.err == f"{len(listed)} clips of the held-out speakers in {len(sets)} folders\n"


def test_a_set_with_undecodable_files_names_them_all_at_once(clips: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # Found in review: a folder with several broken files stopped at the first, one file fixed per run.
    folder = tmp_path / "set"
    folder.mkdir()
    for clip in clips.iterdir():
        (folder / clip.name).symlink_to(clip)
    (folder / "a_broken.wav").write_bytes(b"RIFF not really a wave file")
    (folder / "session 2").mkdir()  # sub-folders are read too (found from outside: they were left out)
    (folder / "session 2" / "b_empty.flac").write_bytes(b"")
    with pytest.raises(SystemExit) as exit_info:
        main(["quality", "--audio", str(folder), "--no-dnsmos", "--json", str(tmp_path / "q.json")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1, err
    assert err.count("\n") == 1 and err.startswith("codec-bench: error: ") and "a_broken.wav" in err, err
    # Every file to fix named (found from outside: only a count, so one run per file to find them).
    assert f"(and 1 more of the 4 files: {folder / 'session 2' / 'b_empty.flac'})" in err, err
    assert not (tmp_path / "q.json").exists()


def _usage_error(args: list[str], capsys: pytest.CaptureFixture[str], code: int = 2) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == code, err
    assert err.count("\n") == 1 and err.startswith("codec-bench: error: ") and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(("rates", "message"), [
    # Found from outside: libopus refused these after the codec had been scored, with a traceback.
    ("1000", "'1000': libopus takes bitrates from 0.5 to 512 kbps"),
    ("8,0.4", "'8,0.4': libopus takes bitrates from 0.5 to 512 kbps"),
    ("nan", "'nan': values must be finite"),
])
def test_quality_opus_rates_libopus_refuses_are_a_usage_error(tiny: Path, clips: Path, tmp_path: Path, rates: str,
                                                             message: str, capsys: pytest.CaptureFixture[str]) -> None:
    err = _usage_error(["quality", "--model", str(tiny), "--audio", str(clips), "--no-dnsmos", "--opus-kbps", rates,
                        "--json", str(tmp_path / "q.json")], capsys)
    assert f"Invalid value for --opus-kbps: {message}" in err and not (tmp_path / "q.json").exists()


def test_call_opus_rate_outside_libopus_range_is_a_usage_error(tiny: Path, clips: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    err = _usage_error(["call", "--model", str(tiny), "--audio", str(clips), "--opus-kbps", "1000",
                        "--json", str(tmp_path / "c.json")], capsys)
    assert "'--opus-kbps': 1000.0 is not in the range 0.5<=x<=512" in err


def test_soak_too_short_for_its_chunks_is_a_usage_error(tiny: Path, clips: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    # Found from outside: a segment without a whole chunk ended in an IndexError traceback.
    err = _usage_error(["soak", "--model", str(tiny), "--audio", str(clips), "--hours", "0.002", "--chunk-frames",
                        "50", "--json", str(tmp_path / "s.json")], capsys)
    assert ("Invalid value for '--hours' / '--chunk-frames': each of the 10 segments holds 36 frames, fewer than one "
            "chunk of 50: stream at least 10 s (0.00278 hours), or send smaller chunks") in err
    # Found from outside: --hours alone was blamed on --chunk-frames, which was not given.
    err = _usage_error(["soak", "--model", str(tiny), "--audio", str(clips), "--hours", "0.00001"], capsys)
    assert "Invalid value for '--hours': each of the 10 segments holds 0 frames, fewer than one chunk of 1" in err


def test_quality_refuses_clips_too_short_to_score(tiny: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # Found from outside: clips under a frame were a traceback, and a 0.3 s clip scored STOI 0 for every row.
    folder = tmp_path / "short"
    folder.mkdir()
    soundfile.write(folder / "a.wav", probe_signal(16000, 0.3, seed=0), 16000)
    soundfile.write(folder / "b.wav", probe_signal(16000, 0.00625, seed=1), 16000)
    err = _usage_error(["quality", "--model", str(tiny), "--audio", str(folder), "--no-dnsmos",
                        "--json", str(tmp_path / "q.json")], capsys, code=1)
    assert (f"{folder / 'a.wav'}: 0.3 s of audio, shorter than the 0.5 s a clip needs to be scored (STOI and PESQ) "
            f"(and 1 more of the 2 files: {folder / 'b.wav'})") in err


def test_quality_of_a_silent_set_writes_every_result(tiny: Path, tmp_path: Path) -> None:
    # Found from outside: the spectrogram figure failed to save (vmin above the whole spectrum) after the rest was
    # written, and the run exited 1.
    folder = tmp_path / "silence"
    folder.mkdir()
    soundfile.write(folder / "s.wav", np.zeros(32000), 16000)
    run(["quality", "--model", str(tiny), "--audio", str(folder), "--no-dnsmos", "--codebooks", "6",
         "--opus-kbps", "8", "--json", str(tmp_path / "q.json")])
    data = read_results(tmp_path / "q.json")
    assert (tmp_path / "q_spectrograms.png").stat().st_size > 1000
    (codec,) = (c for c in data["sets"][0]["conditions"] if c["codec"] == "codec")
    assert codec["summary"]["pesq_wb"]["n"] == 0  # PESQ has nothing to compare with silence
    # Nor have STOI and the ratios (found from outside: a silent clip counted as STOI 0 and SNR 0 dB, and its
    # amplitude ratio of 552 made a set's mean 184).
    for metric in ("stoi", "snr_db", "si_sdr_db", "amplitude_ratio"):
        assert codec["summary"][metric]["n"] == 0, metric
    # Found from outside: with --no-dnsmos the plot drew an empty DNSMOS panel on made-up axes around zero.
    from sscodec.benchmarks.quality_report import figure

    panels = {ax.get_title() or ax.texts[0].get_text(): ax.axison for ax in figure(data).axes}
    assert panels == {"PESQ-WB: not measured in this run": False, "STOI: not measured in this run": False,
                      "mel distance (lower is better)": True, "DNSMOS OVRL: not measured in this run": False}


def test_pesq_of_a_silent_side_is_nan_not_an_error() -> None:
    # Found from outside: `codec-bench call --jitters 100000` (every packet late: a silent output) ended in the pesq
    # package's "cannot convert float NaN to integer" traceback.
    from sscodec.train.perceptual import pesq_wb

    speech = probe_signal(16000, 2.0, seed=0)
    assert np.isnan(pesq_wb(np.zeros_like(speech), speech, 16000))
    assert np.isnan(pesq_wb(speech, np.zeros_like(speech), 16000))
    assert 1.0 < pesq_wb(0.9 * speech, speech, 16000) <= 4.65


def test_pesq_of_another_rate_is_scored_at_16_khz() -> None:
    # P.862.2 is defined at 16 kHz (the pesq package refuses other rates): a 24 kHz model's clips are resampled.
    import soxr

    from sscodec.train.perceptual import pesq_wb

    speech = probe_signal(16000, 2.0, seed=0)
    noisy = speech + 0.02 * np.random.default_rng(1).standard_normal(speech.shape).astype(np.float32)
    at_24k = [soxr.resample(x, 16000, 24000, quality="HQ") for x in (noisy, speech)]
    assert pesq_wb(*at_24k, 24000) == pytest.approx(pesq_wb(noisy, speech, 16000), abs=0.05)


def test_a_missing_argument_points_at_the_subcommands_help(capsys: pytest.CaptureFixture[str]) -> None:
    # Found from outside: no hint at all for a missing argument, and the group's help for a wrong flag.
    err = _usage_error(["curve"], capsys)
    assert err == "codec-bench: error: Missing argument 'RUNS...'. (see codec-bench curve --help)\n"
    err = _usage_error(["quality", "--bogus"], capsys)
    assert err == "codec-bench: error: No such option '--bogus'. (see codec-bench quality --help)\n"


def test_missing_folders_name_their_option(tiny: Path, clips: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    # Found from outside: a missing --calibration-dir was "codec-bench: error: /x: No such file or directory" (exit
    # 1, no option named), and a missing DNSMOS model did not say how to score without it.
    err = _usage_error(["latency", "--model", str(tiny), "--calibration-dir", str(tmp_path / "none")], capsys)
    assert "Invalid value for '--calibration-dir'" in err and "does not exist" in err
    err = _usage_error(["quality", "--model", str(tiny), "--audio", str(clips), "--dnsmos-dir", str(tmp_path),
                        "--json", str(tmp_path / "q.json")], capsys, code=1)
    assert err.strip().endswith("(give --dnsmos-dir, or --no-dnsmos to score without it)") and "sig_bak_ovr.onnx" in err
    # Found from outside: a missing --audio folder was exit 1 where a file given as --audio was exit 2.
    for command in ("latency", "quality", "soak", "call", "train", "web"):
        err = _usage_error([command, "--audio", str(tmp_path / "none")], capsys)
        assert "Invalid value for '--audio'" in err and "does not exist" in err, err
    err = _usage_error(["curve", str(tmp_path), "--score-audio", str(tmp_path / "none")], capsys)
    assert "Invalid value for '--score-audio'" in err and "does not exist" in err, err
    # "-" is not a results path (it wrote "-", "-.md" and "-.png"): refused, as every output that cannot be stdout.
    err = _usage_error(["soak", "--json", "-"], capsys)
    assert "Invalid value for '--json': '-' (standard output) is not taken here" in err, err
    # Found from outside: `--json my/report.txt` replaced the user's my/report.md, a name never given. The results
    # file is named NAME.json, which says where its two companions go; nothing is written on refusal.
    (tmp_path / "report.md").write_text("my notes\n")
    err = _usage_error(["soak", "--json", str(tmp_path / "report.txt")], capsys)
    assert f"Invalid value for '--json': {tmp_path / 'report.txt'}: name the results NAME.json (NAME.md and NAME.png " \
           "are written beside it, replacing files of those names)" in err, err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report.md"]
    assert (tmp_path / "report.md").read_text() == "my notes\n"


def test_precisions_exported_on_the_spot_keep_the_exporters_advice_off_the_output(
        tiny: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # Found from outside: with codec.pt in the folder, codec-bench latency printed 16 lines of torch's exporter
    # advice ("torchvision is not installed. Skipping torchvision::nms"), which codec-export keeps quiet.
    from sscodec.benchmarks.model_source import _export_missing

    capfd.readouterr()
    said: list[str] = []
    made = _export_missing(["fp16"], tiny.parent / "tiny.pt", None, tmp_path / "work", said.append)
    assert (made["fp16"].directory / "encoder_stream.onnx").is_file()
    out, err = capfd.readouterr()
    assert "torchvision" not in err + out and "W1" not in err, err[-2000:]
    # The one line it does say goes through the caller's progress channel, not around it.
    assert said == [f"exporting fp16 from {tiny.parent / 'tiny.pt'} (not in the model folder) ..."], said
    assert "exporting" not in err + out, err[-2000:]


def test_latency_refuses_a_checkpoint_of_another_model(tiny: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Found from outside: `--checkpoint` of another model timed that model in PyTorch and exported its fp16/int8
    as this folder's, without a word. The JSON path shows a run that wrongly goes ahead."""
    other = tmp_path / "other.pt"
    save_codec(Codec(preset("small")), other)
    with pytest.raises(SystemExit) as exit_info:
        main(["latency", "--model", str(tiny), "--checkpoint", str(other), "--json", str(tmp_path / "lat.json")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1, err
    assert err.count("\n") == 1 and err.startswith(f"codec-bench: error: {other}: a codec configured unlike "), err
    assert "channels 30, not 16; latent_dim 64, not 32" in err and "Traceback" not in err, err
    assert not (tmp_path / "lat.json").exists()
    # A file that is not there, or a folder, is a usage error before any work.
    for bad in (tmp_path / "missing.pt", tmp_path):
        with pytest.raises(SystemExit) as exit_info:
            main(["latency", "--model", str(tiny), "--checkpoint", str(bad)])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.count("\n") == 1 and "--checkpoint" in err, err


def test_quality_scores_every_codebook_count_of_a_model_with_fewer_than_twelve(clips: Path, tmp_path: Path) -> None:
    """Found from outside: without --codebooks a 4-codebook model was refused ("must be in 1..4") by the default
    1-12 written for the bundled model."""
    torch.manual_seed(0)
    model_dir = tmp_path / "four"
    export_codec(Codec(dataclasses.replace(preset("tiny"), n_codebooks=4)), model_dir)
    run(["quality", "--model", str(model_dir), "--audio", str(clips), "--opus-kbps", "8", "--no-dnsmos",
         "--json", str(tmp_path / "q.json")])
    (clip_set,) = read_results(tmp_path / "q.json")["sets"]
    assert [c["codebooks"] for c in clip_set["conditions"] if c["codec"] == "codec"] == [1, 2, 3, 4]


def test_precision_variants_say_before_exporting_from_the_checkpoint(tiny: Path, tmp_path: Path) -> None:
    """Found from outside: `latency --checkpoint` exported for minutes without a line, and looked hung."""
    lines: list[str] = []
    variants = precision_variants(tiny, tiny.parent / "tiny.pt", None, tmp_path, lines.append)
    assert lines == [f"exporting fp16 from {tiny.parent / 'tiny.pt'} (not in the model folder) ..."]
    by_precision = {v.precision: v for v in variants}
    assert by_precision["fp16"].directory == tmp_path / "fp16" and (tmp_path / "fp16" / "decoder_stream.onnx").is_file()
    assert by_precision["int8"].directory is None and "calibration clips" in by_precision["int8"].source


def test_quality_scores_two_folders_of_one_name_and_the_working_folder(tiny: Path, clips: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Found from outside: sets were keyed by folder name, so of `--audio a/set --audio b/set` one was dropped
    without a word, and `--audio .` made a set named ""."""
    for parent in ("a", "b"):
        shutil.copytree(clips, tmp_path / parent / "set")
    monkeypatch.chdir(tmp_path / "a" / "set")
    run(["quality", "--model", str(tiny), "--audio", str(tmp_path / "a" / "set"), "--audio",
         str(tmp_path / "b" / "set"), "--audio", ".", "--no-dnsmos", "--codebooks", "6", "--opus-kbps", "8",
         "--json", str(tmp_path / "q.json")])
    data = read_results(tmp_path / "q.json")
    assert [(s["name"], s["clips"]) for s in data["sets"]] == [("set", 2), ("set-2", 2), ("set-3", 2)]


@pytest.mark.parametrize("damaged", ["model", "dnsmos"])
def test_quality_with_a_damaged_model_file_is_one_line(tiny: Path, clips: Path, tmp_path: Path, damaged: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Found from outside: a damaged encoder_stream.onnx or DNSMOS model was a traceback in `quality` alone."""
    args = ["quality", "--audio", str(clips), "--codebooks", "6", "--opus-kbps", "8", "--json",
            str(tmp_path / "q.json")]
    if damaged == "model":
        broken = shutil.copytree(tiny, tmp_path / "model")
        (broken / "encoder_stream.onnx").write_bytes(b"\x08\x07garbage")
        args += ["--model", str(broken), "--no-dnsmos"]
        named = broken / "encoder_stream.onnx"
    else:
        broken = tmp_path / "dnsmos"
        broken.mkdir()
        for name in ("sig_bak_ovr.onnx", "model_v8.onnx"):
            (broken / name).write_bytes(b"\x08\x07garbage")
        args += ["--model", str(tiny), "--dnsmos-dir", str(broken)]
        named = broken / "sig_bak_ovr.onnx"
    with pytest.raises(SystemExit) as stopped:
        main(args)
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert stopped.value.code == 1 and line.startswith(f"codec-bench: error: {named}: not a loadable "), line
    assert "Traceback" not in capsys.readouterr().err


def test_soak_progress_stays_off_the_report_on_standard_output(tiny: Path, clips: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Found from outside: `codec-bench soak > report.md` mixed ten progress lines into the report."""
    run(["soak", "--model", str(tiny), "--audio", str(clips), "--hours", "0.001", "--json", str(tmp_path / "s.json")])
    captured = capsys.readouterr()
    assert "segment 1/10" in captured.err and "segment 1/10" not in captured.out


def test_a_value_given_twice_is_measured_once() -> None:
    """Found from outside: `codec-bench call --losses 0,0` ran and reported the case twice."""
    from sscodec.benchmarks.cli import _float_list

    assert _float_list("0,5,0,5.0,10", "--losses", allow_zero=True) == [0.0, 5.0, 10.0]


def test_quality_says_in_its_report_why_a_coding_mode_was_not_measured(tiny: Path, clips: Path,
                                                                        tmp_path: Path) -> None:
    """Found from outside: a model folder without tables showed "—" for entropy and context coding, the reason in
    the JSON alone."""
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("encoder_stream.onnx", "decoder_stream.onnx"):
        shutil.copy(tiny / name, bare / name)
    run(["quality", "--model", str(bare), "--audio", str(clips), "--no-dnsmos", "--codebooks", "6",
         "--opus-kbps", "8", "--json", str(tmp_path / "q.json")])
    read_results(tmp_path / "q.json")
    assert ("Not measured: context-coded files: context_model.npz not in the model folder; entropy-coded files: "
            "entropy_tables.npz not in the model folder.") in (tmp_path / "q.md").read_text()
