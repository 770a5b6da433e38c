"""`codec-bench`: latency, quality, soak, training and call benchmarks, each written as JSON, Markdown and PNG."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import click

from sscodec.benchmarks import (
    latency_report,
    quality_report,
    soak_report,
    training_curve_report,
    training_report,
)
from sscodec.benchmarks.clips import (
    SCORED_MIN_SECONDS,
    SHARED_VAL,
    conversion_notes,
    read_clip_files,
    read_clips,
    tile_to,
)
from sscodec.benchmarks.dnsmos import DEFAULT_DIR as DNSMOS_DIR
from sscodec.benchmarks.errors import BenchError
from sscodec.benchmarks.latency import CHUNK_FRAMES, WARMUP_CHUNKS, onnx_cases, thread_counts, torch_cases
from sscodec.benchmarks.machine import machine_info
from sscodec.benchmarks.model_source import (
    find_checkpoint,
    load_model,
    model_summary,
    offline_graphs_dir,
    precision_variants,
    resolve_model,
)
from sscodec.benchmarks.opus import OPUS_MAX_KBPS, OPUS_MIN_KBPS
from sscodec.benchmarks.results import ResultPaths, result_paths, write_results
from sscodec.benchmarks.training import (
    BATCH_SIZES,
    DEFAULT_PRESETS,
    PIPELINES,
    TIMED_STEPS,
    WARMUP_STEPS,
    bench_device,
    run_training,
)
from sscodec.benchmarks.training_curve import SLOPE_POINTS, run_curve, score_chains
from sscodec.codec.config import PRESETS
from sscodec.common.audio import AudioFileError, audio_files_below
from sscodec.common.bundled import DEFAULT_NAME
from sscodec.common.cli import (
    FiniteFloatRange,
    NonEmptyPath,
    OutputFile,
    check_outputs,
    command_settings,
    given_flags,
    int_list,
    model_dir_callback,
    run_cli,
)
from sscodec.common.errors import StreamError
from sscodec.common.text import distinct_names, folder_name, plural
from sscodec.stream.engine import StreamEngine
from sscodec.stream.live import parse_latency

LATENCY_AUDIO_SECONDS = 60.0  # long enough that 1,000 chunks of 4 frames never repeat the same audio

model_option = click.option(
    "--model",
    "model",
    default=DEFAULT_NAME,
    show_default=True,
    callback=model_dir_callback,
    metavar="DIR|default",
    help="Exported model folder (codec-export --onnx --out DIR), or the bundled default model.",
)
json_option = click.option(
    "--json",
    "json_path",
    type=OutputFile(),
    default=None,
    callback=lambda ctx, param, value: _results_path(value),
    help="JSON results file, NAME.json: NAME.md and NAME.png (and for quality NAME_spectrograms.png) are written "
         "beside it, replacing files of those names; default benchmarks/results/BENCHMARK.json.",
)


def _results_path(path: Path | None) -> Path | None:
    """--json: checked before the benchmark runs that it is named NAME.json and that its folder (created if
    missing) takes the three files."""
    if path is not None:
        if path.suffix.lower() != ".json":
            # Found from outside: `--json my/report.txt` replaced the user's my/report.md, a name never given.
            raise click.BadParameter(f"{path}: name the results NAME.json (NAME.md and NAME.png are written beside "
                                     "it, replacing files of those names)", param_hint="'--json'")
        paths = result_paths("", path)
        check_outputs({"--json": paths.json, "--json's Markdown": paths.markdown, "--json's plot": paths.plot},
                      parents=True)
    return path


def audio_option(help_text: str):
    """--audio DIR, defaulting to the shared Telugu validation clips where they exist (required elsewhere)."""
    default = SHARED_VAL if SHARED_VAL.is_dir() else None
    return click.option(
        "--audio",
        "audio_dir",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        default=default,
        required=default is None,
        show_default=True,
        help=help_text,
    )


@click.group(context_settings=command_settings())
def cli() -> None:
    """Benchmarks of the streaming codec: latency, quality against Opus, soak, training throughput, live
    mouth-to-ear latency, calls through simulated loss, quality against training compute (curve), and the
    in-browser codec's cost per frame (web); `heldout` lists the speakers the quality benchmark holds out, for
    codec-train --exclude."""


@cli.command()
@model_option
@json_option
@audio_option("Speech clips to stream while timing (tiled to 60 s).")
@click.option(
    "--checkpoint",
    type=NonEmptyPath(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Checkpoint for PyTorch eager and for exporting missing fp16/int8, of the same configuration as the model "
    "(default DIR/codec.pt).",
)
@click.option(
    "--calibration-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Speech clips to calibrate an int8 export made from the checkpoint.",
)
@click.option(
    "--chunks",
    type=click.IntRange(min=1000),
    default=1000,
    show_default=True,
    help="Timed chunks per case (after the warm-up).",
)
def latency(
    model: str,
    json_path: Path | None,
    audio_dir: Path | None,
    checkpoint: Path | None,
    calibration_dir: Path | None,
    chunks: int,
) -> None:
    """Per-chunk compute time and real-time factor, encode and decode, per backend, precision and threads; and one
    clip streamed, through the offline graphs and through libopus side by side."""
    from sscodec.benchmarks.comparison import compare
    from sscodec.benchmarks.profiling import profile_stream_graphs
    from sscodec.benchmarks.stream_cost import stream_cost

    model_dir = resolve_model(model)
    info = StreamEngine(model_dir).info
    checkpoint = find_checkpoint(model_dir, checkpoint, info.codec_config)
    samples = int(LATENCY_AUDIO_SECONDS * info.sample_rate)
    if audio_dir is not None:
        audio, audio_source = (
            tile_to(list(read_clips(audio_dir, info.sample_rate).values()), samples),
            str(audio_dir),
        )
    else:
        from sscodec.export.probe import probe_signal

        audio, audio_source = probe_signal(info.sample_rate, LATENCY_AUDIO_SECONDS), "synthetic probe signal"
    calibration = _calibration(calibration_dir, info) if calibration_dir else None
    with tempfile.TemporaryDirectory(prefix="codec-bench-export-") as work:
        variants = precision_variants(model_dir, checkpoint, calibration, Path(work), _stage)
        _stage(f"timing ONNX Runtime: {', '.join(v.precision for v in variants)} at "
               f"{', '.join(map(str, thread_counts()))} thread(s), chunks of {', '.join(map(str, CHUNK_FRAMES))} "
               f"frames, {chunks} chunks each ...")
        cases = onnx_cases(variants, audio, chunks)
    _stage("timing PyTorch eager ...")
    cases += _pytorch_cases(checkpoint, audio, chunks)
    _stage("streamed against the offline graphs and libopus, side by side ...")
    comparison = compare(model_dir, offline_graphs_dir(model_dir), audio)
    _stage("where a streamed frame's time goes (benchmarks/stream_cost.py) ...")
    cost = stream_cost(model_dir, offline_graphs_dir(model_dir), audio)
    _stage("profiling the stream graphs ...")
    data = {
        "benchmark": "latency",
        "machine": machine_info(),
        "model": model_summary(model_dir, info, checkpoint),
        "audio": audio_source,
        "algorithmic_latency_ms": info.frame_ms,
        "chunk_frames": list(CHUNK_FRAMES),
        "warmup_chunks": WARMUP_CHUNKS,
        "chunks_per_case": chunks,
        "variants": [
            {"precision": v.precision, "directory": str(v.directory), "source": v.source} for v in variants
        ],
        "cases": cases,
        "target": latency_report.target_verdict(cases),
        "profile": profile_stream_graphs(model_dir, audio, info.frame_size),
        "comparison": comparison,
        "stream_cost": cost,
    }
    _finish("latency", json_path, data, latency_report.markdown(data), latency_report.figure(data))


def _stage(text: str) -> None:
    """A progress line on stderr, so a run of minutes is not silent."""
    click.echo(text, err=True)


@cli.command()
@model_option
@json_option
@click.option(
    "--audio",
    "audio_dirs",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    multiple=True,
    help="A folder of speech clips to code and score, as one set; repeatable. Default: --held-out.",
)
@click.option(
    "--held-out",
    is_flag=True,
    help="Score telugu/val and the cross-domain sets carved from ../shared/data/extra by speaker.",
)
@click.option(
    "--codebooks", default=None, help="Codebook counts: a range A-B or a list.  [default: 1 to the model's count]"
)
@click.option(
    "--opus-kbps", default="6,8,12", show_default=True,
    help="Opus bitrates (kbps), comma-separated (libopus takes 0.5 to 512)."
)
@click.option("--dnsmos/--no-dnsmos", default=True, show_default=True, help="Score DNSMOS P.835 and P.808.")
@click.option(
    "--dnsmos-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DNSMOS_DIR,
    show_default=True,
    help="Folder with DNSMOS' sig_bak_ovr.onnx and model_v8.onnx.",
)
def quality(
    model: str, json_path: Path | None, audio_dirs: tuple[Path, ...], held_out: bool, codebooks: str | None,
    opus_kbps: str, dnsmos: bool, dnsmos_dir: Path,
) -> None:
    """PESQ-WB, STOI, mel distance, SNR, SI-SDR, level and DNSMOS against bitrate, per set: codec and Opus."""
    from sscodec.benchmarks.dnsmos import Dnsmos
    from sscodec.benchmarks.heldout import validation_sets
    from sscodec.benchmarks.metrics import MEL_DEFINITION, ClipScorer
    from sscodec.benchmarks.opus import METHOD, opus_version
    from sscodec.benchmarks.quality import WholeClipCodec, codec_conditions, input_condition, opus_conditions

    model_dir = resolve_model(model)
    codec = WholeClipCodec(model_dir)
    info = codec.info
    # A count given twice is scored once.
    counts = (list(dict.fromkeys(int_list(codebooks, "--codebooks"))) if codebooks is not None
              else list(range(1, info.n_codebooks + 1)))
    if not all(1 <= q <= info.n_codebooks for q in counts):
        raise click.BadParameter(
            f"codebook counts must be in 1..{info.n_codebooks}", param_hint="--codebooks"
        )
    rates = tuple(_float_list(opus_kbps, "--opus-kbps"))
    if not all(OPUS_MIN_KBPS <= rate <= OPUS_MAX_KBPS for rate in rates):
        raise click.BadParameter(f"{opus_kbps!r}: libopus takes bitrates from {OPUS_MIN_KBPS:g} to "
                                 f"{OPUS_MAX_KBPS:g} kbps", param_hint="--opus-kbps")
    held_out_sets = validation_sets() if held_out or not audio_dirs else {}
    # Named by their folders, distinct from each other and the held-out sets (found from outside: two folders
    # named `set` were scored as one, the other dropped without a word).
    names = distinct_names((folder_name(directory) for directory in audio_dirs), taken=held_out_sets)
    sets = {name: read_clips(directory, info.sample_rate, SCORED_MIN_SECONDS)
            for name, directory in zip(names, audio_dirs, strict=True)}
    sets.update(
        {name: read_clip_files(paths, info.sample_rate, SCORED_MIN_SECONDS) for name, paths in held_out_sets.items()}
    )
    files = {**{name: audio_files_below(directory) for name, directory in zip(names, audio_dirs, strict=True)},
             **held_out_sets}
    scorer = ClipScorer(info.sample_rate, Dnsmos(dnsmos_dir) if dnsmos else None)
    results = []
    for name, clips in sets.items():
        # Found from outside: 8 kHz and stereo folders were scored without a word.
        notes = conversion_notes(files[name], info.sample_rate)
        for note in notes:
            _stage(f"note: {name}: {note}")
        _stage(f"scoring {name} ({len(clips)} {plural(len(clips), 'clip')}) ...")
        results.append({
            "name": name,
            "clips": len(clips),
            "notes": notes,
            "clip_names": list(clips),
            "audio_seconds": sum(a.size for a in clips.values()) / info.sample_rate,
            "conditions": [
                input_condition(clips, scorer),
                *codec_conditions(codec, clips, counts, scorer),
                *opus_conditions(clips, info.sample_rate, rates, scorer),
            ],
        })
    data = {
        "benchmark": "quality",
        "machine": machine_info(),
        "model": model_summary(model_dir, info, None),
        "sets": results,
        "mel_definition": MEL_DEFINITION,
        "dnsmos": str(dnsmos_dir) if dnsmos else None,
        "opus_version": opus_version(),
        "opus_method": METHOD,
    }
    paths = result_paths("quality", json_path)
    spectrograms = quality_report.spectrograms(codec, sets, rates)
    _finish("quality", json_path, data, quality_report.markdown(data, paths.plot.name), quality_report.figure(data))
    spectrograms.savefig(paths.spectrograms, dpi=90, bbox_inches="tight")
    click.echo(f"wrote {paths.spectrograms}")


@cli.command()
@model_option
@json_option
@audio_option("Speech clips, repeated to fill the run.")
@click.option(
    "--hours",
    # Found from outside: --hours 1e9 tried to allocate 1.28 PiB for its per-chunk records (a traceback); 100
    # hours (days of streaming at full speed) need about 140 MB of them.
    type=FiniteFloatRange(min=0, max=100, min_open=True),
    default=1.0,
    show_default=True,
    help="Hours of audio to stream.",
)
@click.option("--chunk-frames", type=click.IntRange(min=1), default=1, show_default=True,
              help="Frames per chunk (per packet) of the stream.")
def soak(model: str, json_path: Path | None, audio_dir: Path, hours: float, chunk_frames: int) -> None:
    """Hours of speech through one stream at full speed: exact length, flat memory, no compute drift."""
    from sscodec.benchmarks.soak import check_length, run_soak

    model_dir = resolve_model(model)
    info = StreamEngine(model_dir).info
    try:
        check_length(hours * 3600, info.frame_ms, chunk_frames)
    except ValueError as error:
        # The option the user gave (found from outside: --hours 0.00001 alone was blamed on --chunk-frames).
        given = given_flags(click.get_current_context())
        raise click.BadParameter(str(error), param_hint=" / ".join(
            f"'{flag}'" for flag in ("--hours", "--chunk-frames") if flag in given) or "'--hours'") from None
    clips = read_clips(audio_dir, info.sample_rate)
    result = run_soak(model_dir, list(clips.values()), hours * 3600, chunk_frames, progress=_stage)  # off stdout
    data = {
        "benchmark": "soak",
        "machine": machine_info(),
        "model": model_summary(model_dir, info, None),
        "audio_dir": str(audio_dir),
        "clips": list(clips),
        "sample_rate": info.sample_rate,
        "block_samples": info.frame_size,
        "soak": result,
    }
    _finish("soak", json_path, data, soak_report.markdown(data), soak_report.figure(data))


@cli.command()
@model_option
@json_option
@click.option("--latencies", default="low,0.1", show_default=True, help="codec-stream --latency values to compare.")
@click.option("--chunk-frames", "chunk_frames", default="1,4", show_default=True, help="Chunk sizes to compare.")
@click.option("--clicks", type=click.IntRange(min=2), default=20, show_default=True,
              help="Clicks per mouth-to-ear run (0.5 s apart).")
@click.option("--starts", type=click.IntRange(min=1), default=3, show_default=True,
              help="codec-stream starts per mouth-to-ear case (device buffering can differ per start).")
@click.option("--runs", type=click.IntRange(min=0), default=30, show_default=True,
              help="Repeated --mic runs per latency on PulseAudio.")
@click.option("--pipewire-runs", "pipewire_runs", type=click.IntRange(min=0), default=10, show_default=True,
              help="Repeated --mic runs on PipeWire, at codec-stream's default latency (skipped without PipeWire).")
@click.option("--seconds", type=FiniteFloatRange(min=1), default=10.0, show_default=True,
              help="Length of each repeated run.")
def live(model: str, json_path: Path | None, latencies: str, chunk_frames: str, clicks: int, starts: int,
         runs: int, pipewire_runs: int, seconds: float) -> None:
    """Live mode from outside: mouth-to-ear latency of a click train, recorded sample-synchronously with the
    codec's output (PulseAudio null sinks, PipeWire's PulseAudio layer when installed, JACK at 48 kHz), and
    repeated runs that must end only when asked. Failed sanity checks are reported, on stderr and in the results."""
    from sscodec.benchmarks import live_report
    from sscodec.benchmarks.live import mouth_to_ear_jack, mouth_to_ear_pulse, repeated_runs
    from sscodec.benchmarks.sound_servers import (
        PIPEWIRE_HINT,
        PIPEWIRE_TOOLS,
        SoundServerError,
        missing_tools,
    )

    chosen = [text.strip() for text in latencies.split(",") if text.strip()]
    if not chosen:
        raise click.BadParameter(f"{latencies!r}: no latency given", param_hint="--latencies")
    for text in chosen:  # before any sound server starts
        try:
            parse_latency(text)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--latencies") from None
    sizes = int_list(chunk_frames, "--chunk-frames")
    if min(sizes) < 1:
        raise click.BadParameter(f"{chunk_frames!r}: chunk sizes are 1 frame or more", param_hint="--chunk-frames")
    # Before any sound server starts (found from outside: a folder without graphs failed a minute in, inside
    # the first codec-stream run).
    StreamEngine(resolve_model(model))
    cases = [(latency, k) for latency in chosen for k in sizes]
    skipped, pipewire_soak = [], []
    if missing_tools(PIPEWIRE_TOOLS):
        reason = f"PipeWire not installed ({', '.join(missing_tools(PIPEWIRE_TOOLS))} missing; {PIPEWIRE_HINT})"
        skipped.append({"server": "pipewire", "reason": reason})
        click.echo(f"skipping PipeWire: {reason}", err=True)
    try:
        with tempfile.TemporaryDirectory() as folder:
            # Progress on stderr, a line per phase (found from outside: minutes without a word).
            mouth_to_ear = f"{len(cases)} {plural(len(cases), 'case')} x {starts} codec {plural(starts, 'start')}"
            _stage(f"PulseAudio: loopback checks, then mouth-to-ear latency, {mouth_to_ear}")
            measured, loopbacks = mouth_to_ear_pulse(model, cases, clicks, starts, Path(folder))
            if not skipped:
                _stage(f"PipeWire: loopback checks, then mouth-to-ear latency, {mouth_to_ear}")
                pipewire, pipewire_loopbacks = mouth_to_ear_pulse(model, cases, clicks, starts, Path(folder),
                                                                  "pipewire")
                measured, loopbacks = measured + pipewire, loopbacks + pipewire_loopbacks
                if pipewire_runs:
                    _stage(f"PipeWire: {pipewire_runs} repeated {plural(pipewire_runs, 'run')} of {seconds:g} s")
                    pipewire_soak = [repeated_runs(model, None, pipewire_runs, seconds, "pipewire")]
            _stage(f"JACK at 48 kHz: mouth-to-ear latency, {mouth_to_ear}")
            measured += mouth_to_ear_jack(model, cases, clicks, starts, Path(folder))
        pulse_soak = []
        for latency in chosen if runs else []:
            _stage(f"PulseAudio: {runs} repeated {plural(runs, 'run')} of {seconds:g} s at --latency {latency}")
            pulse_soak.append(repeated_runs(model, latency, runs, seconds))
    except SoundServerError as error:
        raise BenchError(str(error)) from None
    data = {"benchmark": "live", "machine": machine_info(), "model": model, "mouth_to_ear": measured,
            "loopback_checks": loopbacks, "skipped": skipped, "repeated_runs": pulse_soak + pipewire_soak}
    for failure in live_report.failed_checks(data):
        click.echo(f"sanity check failed: {failure}", err=True)
    _finish("live", json_path, data, live_report.markdown(data), live_report.figure(data))


@cli.command("call")
@model_option
@json_option
@audio_option("Speech clips to send through the simulated network.")
@click.option("--codebooks", type=click.IntRange(min=1), default=None, help="Codebooks the codec sends [default: all].")
@click.option("--opus-kbps", type=FiniteFloatRange(min=OPUS_MIN_KBPS, max=OPUS_MAX_KBPS), default=8.0,
              show_default=True, help="Opus bitrate (VBR), kbps (libopus takes 0.5 to 512).")
@click.option("--losses", default="0,5,10,20", show_default=True, help="Packet loss rates, percent.")
@click.option("--jitters", default="0,20,40,60", show_default=True, help="Jitter values, ms.")
@click.option("--clips", "max_clips", type=click.IntRange(min=1), default=None, help="Use only the first N clips.")
def call_bench(model: str, json_path: Path | None, audio_dir: Path, codebooks: int | None, opus_kbps: float,
               losses: str, jitters: str, max_clips: int | None) -> None:
    """Received against sent through simulated loss (random and bursty) and jitter: our concealment, silence
    insertion and Opus with its own PLC, PESQ-WB and mel distance."""
    import time

    from sscodec.benchmarks import call_report
    from sscodec.benchmarks.call import BURST, networks, run_call_bench, verdict
    from sscodec.benchmarks.call import __doc__ as network_method
    from sscodec.benchmarks.metrics import MEL_DEFINITION, ClipScorer
    from sscodec.benchmarks.opus import COMPLEXITY, opus_version
    from sscodec.stream.model import CodecModel

    model_dir = resolve_model(model)
    codec = CodecModel(model_dir)
    info = codec.info
    codebooks = codebooks or info.n_codebooks
    if codebooks > info.n_codebooks:
        raise click.BadParameter(f"at most {info.n_codebooks} for this model", param_hint="--codebooks")
    loss_rates = tuple(v / 100 for v in _float_list(losses, "--losses", allow_zero=True))
    if any(v >= 1 for v in loss_rates):
        raise click.BadParameter("loss rates must be below 100", param_hint="--losses")
    nets = networks(loss_rates, tuple(_float_list(jitters, "--jitters", allow_zero=True)))
    clips = read_clips(audio_dir, info.sample_rate, SCORED_MIN_SECONDS)
    clips = dict(list(clips.items())[:max_clips]) if max_clips else clips
    start = time.monotonic()
    results = run_call_bench(codec, clips, codebooks, opus_kbps, nets, ClipScorer(info.sample_rate),
                             progress=_stage)
    data = {
        "benchmark": "call",
        "machine": machine_info(),
        "model": model_summary(model_dir, info, None),
        "codebooks": codebooks,
        "codec_kbps": info.bitrate_kbps(codebooks),
        "opus": (f"{opus_version()} packet by packet through ctypes, {opus_kbps:g} kbps VBR, complexity "
                 f"{COMPLEXITY}, VOIP, 20 ms packets, no FEC; lost packets concealed by libopus's classic PLC"),
        "audio_dir": str(audio_dir),
        "clips": list(clips),
        "audio_seconds": sum(a.size for a in clips.values()) / info.sample_rate,
        "bursty_mean_run": BURST,
        "network_method": " ".join(network_method.split("\n\n", 1)[1].split()),
        "score_method": ("PESQ-WB (pesq package) and mel distance (" + MEL_DEFINITION + ") of the aligned received "
                         "audio against the clip that was sent; means over clips."),
        "wall_seconds": time.monotonic() - start,
        "results": results,
        "verdict": verdict(results),
    }
    _finish("call", json_path, data, call_report.markdown(data), call_report.figure(data))


@cli.command()
@json_option
@audio_option("Speech clips to train on.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--preset",
    "presets",
    type=click.Choice(list(PRESETS)),
    multiple=True,
    help="Repeat for several [default: tiny, small and base on CUDA; tiny and small on CPU].",
)
@click.option("--batch-size", type=click.IntRange(min=1), help="Crops of 0.5 s per step [default: 8 on CPU, 32 on CUDA].")
@click.option(
    "--steps", type=click.IntRange(min=1), default=TIMED_STEPS, show_default=True, help="Timed steps per setting."
)
@click.option(
    "--compile", "with_compile", is_flag=True, help="Also time torch.compile (minutes of compiling per setting)."
)
@click.option(
    "--pipeline",
    "pipelines",
    type=click.Choice(PIPELINES),
    multiple=True,
    help="Repeat for several: streaming (crops read from disk by DataLoader workers, codec-train's default) or "
    "memory (every file decoded first, crops cut on the main thread; codec-train --in_memory --num_workers 0) "
    "[default: streaming].",
)
def train(
    json_path: Path | None,
    audio_dir: Path,
    device: str,
    presets: tuple[str, ...],
    batch_size: int | None,
    steps: int,
    with_compile: bool,
    pipelines: tuple[str, ...],
) -> None:
    """Training steps/s and audio-s/s per preset and recipe, eager vs torch.compile (and bf16 vs fp32 on CUDA)."""
    device = bench_device(device)
    presets = presets or DEFAULT_PRESETS[device]
    batch_size = batch_size or BATCH_SIZES[device]
    compiled = (False, True) if with_compile else (False,)
    runs = run_training(audio_dir, batch_size, device, presets, compiled, steps, pipelines or ("streaming",))
    data = {
        "benchmark": "train",
        "machine": machine_info(),
        "audio_dir": str(audio_dir),
        "warmup_steps": WARMUP_STEPS,
        "timed_steps": steps,
        "runs": [run.to_dict() for run in runs],
    }
    _finish("train", json_path, data, training_report.markdown(data), training_report.figure(data))


@cli.command()
@json_option
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--label", "labels", multiple=True, help="A name per run, in order [default: the run folder's name].")
@click.option("--score-audio", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Also score each run's best.pt and each chain's root on these clips (PESQ-WB, STOI, mel, SNR).")
def curve(json_path: Path | None, runs: tuple[Path, ...], labels: tuple[str, ...], score_audio: Path | None) -> None:
    """Validation quality against training compute for codec-train RUNS, each after the runs it was
    initialised from (--init_from): audio-hours and wall-hours, and what each run's last hour bought."""
    if labels and len(labels) != len(runs):
        raise click.BadParameter(f"{len(labels)} labels for {len(runs)} runs", param_hint="--label")
    repeated = sorted({str(run) for run in runs if sum(r.resolve() == run.resolve() for r in runs) > 1})
    if repeated:
        raise click.BadParameter(f"{', '.join(repeated)} given more than once", param_hint="RUNS")
    curves = [run_curve(run, label) for run, label in zip(runs, labels or [None] * len(runs))]
    data = {
        "benchmark": "curve",
        "machine": machine_info(),
        "slope_points": SLOPE_POINTS,
        "runs": [c.to_dict() for c in curves],
        "score_audio": None if score_audio is None else str(score_audio),
        "scores": {} if score_audio is None else score_chains(curves, score_audio),
    }
    _finish("curve", json_path, data, training_curve_report.markdown(data), training_curve_report.figure(data))


@cli.command()
@model_option
@json_option
@audio_option("Speech clips to code (tiled to --seconds).")
@click.option("--codebooks", default=None, help="Codebook counts: a range A-B or a list [default: a quarter, half and all].")
@click.option("--seconds", type=FiniteFloatRange(min=2), default=8.0, show_default=True,
              help="Speech coded per count, one 20 ms frame per call.")
def web(model: str, json_path: Path | None, audio_dir: Path, codebooks: str | None, seconds: float) -> None:
    """The in-browser codec's cost per frame in headless Chromium (ONNX Runtime Web, the page's codec.js) and in
    Python, per codebook count: the cut encoder the page runs against the whole one, and the decoder."""
    from sscodec.benchmarks import web_report
    from sscodec.benchmarks.web import run_web

    model_dir = resolve_model(model)
    info = StreamEngine(model_dir).info
    n = info.n_codebooks
    counts = sorted({max(1, n // 4), max(1, n // 2), n}) if codebooks is None else list(int_list(codebooks, "--codebooks"))
    if not all(1 <= q <= n for q in counts):
        raise click.BadParameter(f"codebooks must be in 1..{n} for this model", param_hint="--codebooks")
    frames = int(seconds * 1000 / info.frame_ms)
    audio = tile_to(list(read_clips(audio_dir, info.sample_rate).values()), frames * info.frame_size)
    _stage(f"coding {frames} frames per count in Chromium and in Python, at {', '.join(map(str, counts))} "
           "codebooks ...")
    data = {
        "benchmark": "web",
        "machine": machine_info(),
        "model": str(model_dir),
        "audio": str(audio_dir),
        **run_web(model_dir, audio, counts),
    }
    _finish("web", json_path, data, web_report.markdown(data), web_report.figure(data))


@cli.command()
def heldout() -> None:
    """List every clip of the speakers that the quality benchmark's cross-domain sets hold out, one path per
    line on stdout, for `codec-train --exclude`: training on ../shared/data/extra then never hears them."""
    from sscodec.benchmarks.heldout import heldout_files

    files = heldout_files()
    click.echo("".join(f"{path}\n" for path in files), nl=False)
    folders = len({path.parent for path in files})
    _stage(f"{len(files)} {plural(len(files), 'clip')} of the held-out speakers in {folders} "
           f"{plural(folders, 'folder')}")


def _pytorch_cases(checkpoint: Path | None, audio, chunks: int) -> list[dict]:
    """PyTorch eager cases, or one skipped row saying why they could not run."""
    row = {"backend": "pytorch", "precision": "fp32", "device": "cpu", "threads": 1, "chunk_frames": 1}
    if checkpoint is None:
        return [{**row, "skipped": "no checkpoint (pass --checkpoint or bundle DIR/codec.pt)"}]
    try:
        model = load_model(checkpoint)
    except ImportError:
        return [{**row, "skipped": "torch is not installed"}]
    return torch_cases(model, audio, chunks)


def _calibration(directory: Path, info) -> list:
    from sscodec.export.calibration import load_clips

    return load_clips(audio_files_below(directory), info.sample_rate, info.frame_size)


def _float_list(text: str, hint: str, allow_zero: bool = False) -> list[float]:
    """Comma-separated numbers, each once, in order: a value given twice is measured once (found from outside:
    `codec-bench call --losses 0,0` ran and reported the case twice)."""
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected comma-separated numbers", param_hint=hint) from None
    if not all(math.isfinite(v) for v in values):
        raise click.BadParameter(f"{text!r}: values must be finite", param_hint=hint)
    if allow_zero and any(not 0 <= v < float("inf") for v in values):
        raise click.BadParameter("values must be finite and >= 0", param_hint=hint)
    if not allow_zero and any(v <= 0 for v in values):
        raise click.BadParameter("bitrates must be positive", param_hint=hint)
    return list(dict.fromkeys(values))


def _finish(name: str, json_path: Path | None, data: dict, markdown: str, figure) -> None:
    paths: ResultPaths = result_paths(name, json_path)
    write_results(paths, data, markdown, figure)
    click.echo(markdown)
    click.echo(f"wrote {paths.json}, {paths.markdown} and {paths.plot}")


def main(args: list[str] | None = None) -> None:
    """Entry point: one-line errors, exit 2 for usage mistakes and 1 for runtime problems."""
    run_cli(cli, "codec-bench", (BenchError, StreamError, AudioFileError), args)
