"""`codec-stream`: the codec live (microphone → codec → speakers) or over a file, with its costs."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import click

from sscodec.common.audio import AudioFileError, LevelWatch, write_audio
from sscodec.common.cli import (
    MAX_THREADS,
    FiniteFloatRange,
    InputFile,
    OutputFile,
    check_audio_outputs,
    check_binary_outputs,
    check_outputs,
    command_settings,
    given_flags,
    model_dir_callback,
    run_cli,
)
from sscodec.common.errors import StreamError
from sscodec.common.files import STANDARD_OUTPUT, writes_stdout
from sscodec.common.text import decimal, plural
from sscodec.stream import devices
from sscodec.stream.engine import StreamEngine, bitrate_cap_note, codebook_count
from sscodec.stream.file_mode import stream_file
from sscodec.stream.jitter import DEFAULT_MIN_DELAY_MS, MAX_DELAY_MS
from sscodec.stream.live import DEFAULT_LATENCY, parse_latency, run_live
from sscodec.stream.model import CodecModel
from sscodec.stream.model_dir import ModelInfo, resolve_model_dir
from sscodec.stream.runtime import PROVIDERS, RuntimeOptions
from sscodec.stream.stats import StreamStats, write_stats_json
from sscodec.stream.web_server import parse_address, serve


@click.command(context_settings=command_settings())
@click.option("--mic", is_flag=True, help="Live: microphone → codec → speakers.")
@click.option("--web", "web_address", metavar="HOST:PORT", callback=lambda ctx, param, value: _web_address(value),
              help="Serve the in-browser codec page at http://HOST:PORT/ (HOST 127.0.0.1 if left out; port 0: any "
                   "free one). The browser runs the codec; Ctrl-C stops.")
@click.option("--input", "input_path", type=InputFile(),
              help="Stream this audio file (any format, rate, channels, length) from disk instead of the microphone "
                   "(- for standard input, read as it flows: WAV, not formats libsndfile must seek in).")
@click.option("--output", "output_path", type=OutputFile(dash=STANDARD_OUTPUT),
              help="With --input: write the decoded audio here (mono at the model's sample rate; format from the "
                   "extension; - for WAV on standard output once complete): the input's length, or in a call the "
                   "peer's stream after the silence of the playout delay (stats: call.start_offset_samples).")
@click.option("--model", "model_dir", callback=model_dir_callback,
              help="Directory with the exported ONNX files, or 'default' (the bundled model, also used when absent; "
                   "./default names a folder of that name).")
@click.option("--codebooks", type=click.IntRange(1, None), help="Send only the first Q codebooks (Q x the model's kbps per codebook, 0.5 for the bundled model).")
@click.option("--bitrate", type=FiniteFloatRange(min=0, min_open=True),
              help="Raw bitrate in kbps: as many codebooks as fit at the model's kbps per codebook (0.5 for the "
                   "bundled model), all of them above their total.")
@click.option("--chunk-frames", type=click.IntRange(1, 500), default=1, show_default=True,
              help="Frames (one hop of the model each: 20 ms for the bundled one) encoded and decoded per call, "
                   "and per packet in a call (which refuses long packets); the delay grows with it.")
@click.option("--duration", type=FiniteFloatRange(min=0, min_open=True), help="With --mic: stop after S seconds.")
@click.option("--stats-json", type=OutputFile(dash="/dev/stdout"), help="Write the stream stats here (- for standard output).")
@click.option("--list-devices", is_flag=True, help="List audio devices and exit.")
@click.option("--input-device", callback=lambda ctx, param, value: _device(value),
              help="With --mic: input device index or name part (see --list-devices).")
@click.option("--output-device", callback=lambda ctx, param, value: _device(value),
              help="With --mic: output device index or name part (see --list-devices).")
@click.option("--latency", default=str(DEFAULT_LATENCY), show_default=True,
              callback=lambda ctx, param, value: _latency(value),
              help="With --mic: PortAudio's suggested device latency: low, high or seconds in (0, 2] (e.g. 0.1).")
@click.option("--record-input", type=OutputFile(),
              help="With --mic: save what the microphone delivered to the codec (float WAV keeps it exact).")
@click.option("--record-output", type=OutputFile(),
              help="With --mic: save the decoded audio the codec produced for playback.")
@click.option("--provider", type=click.Choice(sorted(PROVIDERS)), default="cpu", show_default=True,
              help="ONNX Runtime execution provider.")
@click.option("--answer", "answer", metavar="HOST:PORT",
              help="Wait for a call: signalling on HOST:PORT (a bare PORT listens on 127.0.0.1 only; 0 picks a free "
                   "port), then send --mic or --input and play or write what arrives. Exits when the call ends.")
@click.option("--call", "call_url", metavar="http://HOST:PORT", help="Place a call to a codec-stream --answer.")
@click.option("--token", help="With --answer: the token callers must present (default: a new random one, printed); "
                              "with --call: the token the answering side printed.")
@click.option("--simulate", metavar="SPEC",
              help="Test aid for calls: simulate a network on received packets, e.g. loss=0.1,burst=3,jitter=40ms,"
                   "delay=20ms,reorder=0.01,duplicate=0.01,seed=1 (README, \"Calls\").")
@click.option("--concealment", type=click.Choice(["repeat", "silence"]), default="repeat", show_default=True,
              help="In calls: how lost packets are filled (repeat: the last codes, fading; silence: the baseline).")
@click.option("--min-playout-delay", type=FiniteFloatRange(0, MAX_DELAY_MS), default=DEFAULT_MIN_DELAY_MS,
              show_default=True, metavar="MS",
              help="In calls: the jitter buffer's smallest delay in ms (it grows with the jitter it measures). Raise "
                   "it where the network or either machine stalls: fewer concealed packets for more latency.")
@click.option("--intra-op-threads", type=click.IntRange(0, MAX_THREADS), default=1, show_default=True,
              help="ONNX Runtime threads inside one operator (0: ONNX Runtime's choice; at most 4 per logical core).")
@click.option("--inter-op-threads", type=click.IntRange(0, MAX_THREADS), default=1, show_default=True,
              help="ONNX Runtime threads across operators (0: ONNX Runtime's choice; at most 4 per logical core).")
def command(
    mic: bool,
    web_address: tuple[str, int] | None,
    input_path: Path | None,
    output_path: Path | None,
    model_dir: str | Path | None,
    codebooks: int | None,
    bitrate: float | None,
    chunk_frames: int,
    duration: float | None,
    stats_json: Path | None,
    list_devices: bool,
    input_device: int | str | None,
    output_device: int | str | None,
    latency: float | str,
    record_input: Path | None,
    record_output: Path | None,
    provider: str,
    answer: str | None,
    call_url: str | None,
    token: str | None,
    simulate: str | None,
    concealment: str,
    min_playout_delay: float,
    intra_op_threads: int,
    inter_op_threads: int,
) -> None:
    """Run the streaming codec live on a microphone or over an audio file and report what it costs; serve it as
    a browser page (--web); or talk through it: --answer waits for a call, --call places one."""
    given = given_flags(click.get_current_context())
    if list_devices:
        # Found from outside: `--list-devices --mic ...` listed and exited 0, as if the run had happened.
        _refuse_flags(sorted(given - {"--list-devices"}), ("does", "do"),
                      "not apply with --list-devices (it lists the audio devices and exits)")
        click.echo(devices.list_devices())
        return
    calling = answer is not None or call_url is not None
    _check_usage(mic, input_path, web_address is not None, output_path, codebooks, bitrate, duration,
                 input_device, output_device, record_input, record_output, calling)
    if not mic and "--latency" in given:
        _refuse_flags(["--latency"], ("applies", "apply"), "only with --mic")
    if not calling:  # --mic, --input and --web alike: a call's flags would be silently ignored
        _check_call_only(given)
    # Before any model is loaded or call placed: no output may overwrite the input, and each must be writable.
    check_outputs({"--output": output_path, "--stats-json": stats_json, "--record-input": record_input,
                   "--record-output": record_output}, {"--input": input_path})
    check_binary_outputs({"--output": output_path, "--record-input": record_input, "--record-output": record_output})
    check_audio_outputs({"--output": output_path, "--record-input": record_input, "--record-output": record_output})
    if web_address is not None:
        _check_web_usage(given)
        model = CodecModel(resolve_model_dir(model_dir))
        try:
            initial_codebooks = codebook_count(model.info, codebooks, bitrate)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
        _note_capped_bitrate(model.info, bitrate)
        serve(model, initial_codebooks, *web_address)
        return
    if calling:
        _call(answer, call_url, token, simulate, concealment, min_playout_delay, mic, input_path, output_path,
              model_dir, codebooks, bitrate, chunk_frames, duration, (input_device, output_device), latency,
              stats_json, RuntimeOptions(provider, intra_op_threads, inter_op_threads))
        return
    try:
        engine = StreamEngine(
            resolve_model_dir(model_dir),
            codebooks=codebooks,
            chunk_frames=chunk_frames,
            runtime=RuntimeOptions(provider, intra_op_threads, inter_op_threads),
            bitrate_kbps=bitrate,
        )
    except ValueError as error:  # only the codebook/bitrate choice does not fit this model
        raise click.UsageError(str(error)) from None
    _note_capped_bitrate(engine.info, bitrate)
    if input_path is not None:
        level = LevelWatch()
        stats = stream_file(engine, input_path, output_path, level)
        if (note := level.note(input_path)) is not None:
            click.echo(f"codec-stream: note: {note}", err=True)
        _report(stats, stats_json, output_path)
        return
    live = run_live(
        engine,
        duration_s=duration,
        devices=(input_device, output_device),
        record=record_input is not None or record_output is not None,
        latency=latency,
    )
    # Recordings and stats are written even when the device failed: they are what explains the failure.
    if record_input is not None:
        write_audio(record_input, live.input_audio, engine.info.sample_rate, exact=True)
    if record_output is not None:
        write_audio(record_output, live.output_audio, engine.info.sample_rate, exact=True)
    _report(live.stats, stats_json, record_input, record_output)
    if live.device_hung:
        devices.abandon_portaudio()
    if live.error:
        raise StreamError(live.error)


def _note_capped_bitrate(info: ModelInfo, bitrate: float | None) -> None:
    if (note := bitrate_cap_note(info, bitrate)) is not None:
        click.echo(f"codec-stream: {note}", err=True)


def _check_usage(mic: bool, input_path: Path | None, web: bool, output_path: Path | None, codebooks: int | None,
                 bitrate: float | None, duration: float | None, input_device: int | str | None,
                 output_device: int | str | None, record_input: Path | None, record_output: Path | None,
                 calling: bool = False) -> None:
    """Reject flag combinations that make no sense before anything is loaded."""
    if web and calling:
        raise click.UsageError("--web serves the codec page; it does not take --answer or --call")
    if calling and mic == (input_path is not None):  # a call's own audio comes from one of these two
        raise click.UsageError("a call needs exactly one of --mic or --input FILE (what this side sends)")
    if [mic, input_path is not None, web].count(True) != 1:
        raise click.UsageError("give exactly one of --mic or --input FILE or --web HOST:PORT (or --list-devices)")
    # Found from outside: in a --mic call these two messages sent the user to each other's flag.
    if calling and (record_input is not None or record_output is not None):
        raise click.UsageError("--record-input and --record-output are for --mic without a call; a call records "
                               "nothing from the sound card (--input FILE --output FILE keep a call's audio)")
    if codebooks is not None and bitrate is not None:
        raise click.UsageError("give --codebooks or --bitrate, not both")
    if output_path is not None and mic:
        raise click.UsageError("--output is for --input; a --mic call plays what it hears and records nothing" if calling
                               else "--output is for --input; with --mic use --record-output")
    live_only = {"--duration": duration, "--input-device": input_device, "--output-device": output_device,
                 "--record-input": record_input, "--record-output": record_output}
    if not mic:
        _refuse_flags([name for name, value in live_only.items() if value is not None], ("applies", "apply"),
                      "only with --mic")


def _check_call_only(given: set[str]) -> None:
    """Outside a call: --token, --simulate, --concealment and --min-playout-delay are usage errors."""
    call_only = ("--token", "--simulate", "--concealment", "--min-playout-delay")
    _refuse_flags([name for name in call_only if name in given], ("applies", "apply"), "only with --answer or --call")


def _check_web_usage(given: set[str]) -> None:
    """The page streams one frame at a time with ONNX Runtime Web in the browser: these flags cannot apply."""
    local = ("--output", "--chunk-frames", "--stats-json", "--provider", "--intra-op-threads", "--inter-op-threads")
    _refuse_flags([name for name in local if name in given], ("does", "do"),
                  "not apply with --web (the browser runs the codec)")


def _refuse_flags(used: list[str], verbs: tuple[str, str], rest: str) -> None:
    """A usage error naming the flags in `used` (none: no error), one builder so that the verb (singular, plural)
    always agrees with their number: "--a applies ...", "--a, --b apply ..."."""
    if used:
        raise click.UsageError(f"{', '.join(used)} {plural(len(used), *verbs)} {rest}")


def _web_address(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    try:
        return parse_address(text)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _call(answer: str | None, call_url: str | None, token: str | None, simulate: str | None, concealment: str,
          min_playout_delay: float, mic: bool, input_path: Path | None, output_path: Path | None,
          model_dir: str | Path | None, codebooks: int | None, bitrate: float | None, chunk_frames: int, duration: float | None,
          device_pair: tuple, latency: float | str, stats_json: Path | None, runtime: RuntimeOptions) -> None:
    """--answer / --call: check the call's flags, run the call, report it."""
    if answer is not None and call_url is not None:
        raise click.UsageError("give --answer or --call, not both")
    try:
        from sscodec.stream import call
    except ImportError as error:
        raise StreamError(f"calls need the call extra ({error}): pip install 'streaming-speech-codec[call]'") \
            from None
    from sscodec.stream.concealment import ConcealMethod
    from sscodec.stream.netsim import parse_conditions
    from sscodec.stream.signalling import MAX_CALL_CHUNK_FRAMES, token_problem

    if chunk_frames > MAX_CALL_CHUNK_FRAMES:
        raise click.UsageError(f"--chunk-frames: at most {MAX_CALL_CHUNK_FRAMES} in a call")
    if answer is not None and token is not None and not token.strip():  # it would silently get a random one
        raise click.UsageError("--token is empty: leave it out for a random one")
    # Found from outside: an answering side waited for ever on a token no caller could present.
    if token is not None and (problem := token_problem(token)):
        raise click.UsageError(problem)
    try:
        if answer is not None:
            call.parse_listen_address(answer)
        else:
            call.check_call_url(call_url)
        conditions = parse_conditions(simulate) if simulate is not None else None
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    setup = call.CallSetup(
        role="answer" if answer is not None else "call",
        address=answer if answer is not None else call_url,
        token=token,
        model_dir=resolve_model_dir(model_dir),
        runtime=runtime,
        codebooks=codebooks,
        bitrate_kbps=bitrate,
        chunk_frames=chunk_frames,
        input_path=input_path,
        output_path=output_path,
        devices=device_pair,
        latency=latency,
        duration_s=duration,
        concealment=ConcealMethod(concealment),
        simulate=conditions,
        min_playout_delay_ms=min_playout_delay,
    )
    try:
        # The call's progress lines go where the summary goes: not into a WAV or JSON on standard output.
        outcome = call.run_call(setup, partial(click.echo, err=any(map(writes_stdout, (stats_json, output_path)))))
    except call.CodebookChoiceError as error:
        raise click.UsageError(str(error)) from None
    if outcome.stats is not None:
        _report(outcome.stats, stats_json, output_path)
    if outcome.error:
        raise StreamError(outcome.error)


def _device(text: str | None) -> int | str | None:
    """A device from the command line: an index from --list-devices, or part of its name."""
    if text is None:
        return None
    index = decimal(text.strip())
    return text if index is None else index


def _latency(text: str) -> float | str:
    try:
        return parse_latency(text)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _report(stats: StreamStats, stats_json: Path | None, *outputs: Path | None) -> None:
    """The human summary and, if asked, the stats JSON (after it: a JSON that cannot be written is an error, but
    the summary is not lost with it). The summary goes to stdout unless the JSON or one of the run's `outputs`
    does (found from outside: `--stats-json /dev/stdout | python -m json.tool` read the summary first)."""
    click.echo(stats.summary(), err=any(map(writes_stdout, (stats_json, *outputs))))
    if stats_json is not None:
        write_stats_json(stats_json, stats)


def main(args: Sequence[str] | None = None) -> None:
    """Console entry point: user mistakes become one line on stderr and a non-zero exit code."""
    run_cli(command, "codec-stream", (StreamError, AudioFileError), args)
