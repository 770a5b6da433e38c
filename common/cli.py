"""Command-line entry points that answer a user's mistake with one line on stderr, never a traceback."""

from __future__ import annotations

import math
import os
import select
import signal
import stat
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from sscodec.common.audio import AudioFileError, check_writable_format
from sscodec.common.bundled import DEFAULT_NAME, typed_folder
from sscodec.common.files import check_can_create, output_target, same_file, writes_stdout
from sscodec.common.startup import release_interrupts

# The most threads (or worker processes) a flag may ask for: a few per logical core can still pay where they wait
# on I/O, an unbounded count once stalled the machine (100,000 ONNX Runtime threads requested).
MAX_THREADS = 4 * (os.cpu_count() or 1)

USAGE_ERROR = 2
RUNTIME_ERROR = 1
INTERRUPTED = 130  # Ctrl-C (SIGINT), as shells report it
TERMINATED = 143  # SIGTERM, as shells report it
EMPTY_PATH = "an empty path (an unset shell variable?): name a file or folder"


def command_settings(separator: str = "-", **settings: Any) -> dict[str, Any]:
    """click's context settings for every command: `-h` beside `--help`, and a flag's words joined by "-" or "_"
    alike. codec-train's flags are spelled with "_", as users' training scripts spell them, every other command's
    with "-" (found from outside: `codec-train --batch-size` and `codec-export --tables_only` were "no such
    option"). click applies the same function to Choice values, none of which holds either separator."""
    other = "_" if separator == "-" else "-"
    return {"help_option_names": ["-h", "--help"],
            "token_normalize_func": lambda token: token.replace(other, separator), **settings}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C: temp files removed, outputs kept whole."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then deliver them to whatever handled them before; a second
    one while held is delivered at once. For work that must not stop halfway (a training step whose state is
    then saved). A no-op outside the main thread, where Python runs no signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.getsignal(signum) for signum in signals}
    held: list[int] = []

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def hold(signum: int, frame: object) -> None:
        if held:
            restore()
            os.kill(os.getpid(), signum)
        held.append(signum)

    for signum in signals:
        signal.signal(signum, hold)
    try:
        yield
    finally:
        restore()
        if held:
            os.kill(os.getpid(), held[0])  # as if it arrived now


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses inf and nan, which compare past (or around) any bound."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number in the range {self._describe_range()}.", param, ctx)
        return number


class NonEmptyPath(click.Path):
    """click.Path that refuses an empty value, which pathlib and os take as the current folder (found from outside:
    `--out "$OUT"` with OUT unset exported into the working folder; `--checkpoint_dir ""` trained into it)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value in ("", b""):
            self.fail(EMPTY_PATH, param, ctx)
        return super().convert(value, param, ctx)


class InputFile(NonEmptyPath):
    """An existing file to read: click.Path(exists=True, dir_okay=False, path_type=Path) where "-" is standard
    input, as for most Unix tools, read as /dev/stdin is (found from outside: `codec-encode x.wav -` wrote a file
    named "-", and `codec-stream --input -` looked for a file named "-")."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False, path_type=Path, allow_dash=True)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if (os.fsdecode(value) if isinstance(value, (str, bytes, os.PathLike)) else value) == "-":
            return Path("/dev/stdin")
        return super().convert(value, param, ctx)


class OutputFile(NonEmptyPath):
    """A file to write: click.Path(dir_okay=False, path_type=Path) that also refuses a path ending in a separator
    or "/." (pathlib drops either: found from outside, `codec-encode talk.wav victim.sscb/` replaced an existing
    victim.sscb and `... newdir/` made a file named newdir, where `cp` says "Not a directory").

    "-" is standard output, as for most Unix tools: it becomes Path(`dash`) (e.g. "/dev/stdout", or "-" for a
    command that writes standard output its own way); without `dash` it is refused, not taken as a file name
    (found from outside: `--stats-json -` wrote a file named "-")."""

    def __init__(self, dash: str | None = None) -> None:
        super().__init__(dir_okay=False, path_type=Path, allow_dash=dash is not None)
        self.dash = dash

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = os.fsdecode(value) if isinstance(value, (str, bytes, os.PathLike)) else value
        if text == "-":
            if self.dash is None:
                self.fail("'-' (standard output) is not taken here: give a file name", param, ctx)
            return Path(self.dash)
        if isinstance(text, str) and text and os.path.basename(text) in ("", "."):  # "": NonEmptyPath's error
            self.fail(f"'{text}' names a folder: give a file name", param, ctx)
        return super().convert(value, param, ctx)


def int_list(text: str, hint: str) -> tuple[int, ...]:
    """Integers written as a range A-B or a comma-separated list ("1-12", "6,12"); click.BadParameter naming
    the option `hint` for anything else, or an empty range."""
    try:
        if "-" in text:
            low, high = (int(x) for x in text.split("-"))
            values = tuple(range(low, high + 1))
        else:
            values = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: expected A-B or a comma-separated list", param_hint=hint
        ) from None
    if not values:  # A-B with A > B: an empty range would measure nothing and say nothing
        raise click.BadParameter(f"{text!r}: the range is empty (write the smaller number first)", param_hint=hint)
    return values


def given_flags(context: click.Context) -> set[str]:
    """The options given on the command line (or the environment), even at their default value: a flag that
    cannot apply is refused whatever its value, not only when it differs from the default."""
    sources = (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)
    return {param.opts[0] for param in context.command.params
            if param.name is not None and context.get_parameter_source(param.name) in sources}


def run_cli(
    command: click.Command,
    prog: str,
    expected: tuple[type[BaseException], ...],
    args: Sequence[str] | None = None,
) -> None:
    """Run a click command; usage errors exit 2 and `expected` errors exit 1, each as one line on stderr.

    Ctrl-C exits 130 and SIGTERM 143 (`prog: interrupted` / `prog: terminated`), both after the stack has
    unwound, so temp files are removed and outputs left whole or as they were.
    """
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        release_interrupts()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        _run(command, prog, expected, args)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _run(command: click.Command, prog: str, expected: tuple[type[BaseException], ...],
         args: Sequence[str] | None) -> None:
    try:
        # The context by hand rather than command.main, whose Ctrl-C handling writes a blank line to stderr first,
        # a second line for a redirected stderr and even for SIGTERM.
        with command.make_context(prog, list(sys.argv[1:] if args is None else args)) as context:
            command.invoke(context)
    except click.exceptions.Exit as error:  # --help and the like: 0 is a normal return
        if error.exit_code:
            sys.exit(error.exit_code)
    except click.exceptions.Abort as error:
        _interrupted(prog, error.__cause__)
    except click.exceptions.NoArgsIsHelpError as error:  # a bare group command: its usage, as click prints it
        error.show()
        sys.exit(error.exit_code)
    except click.UsageError as error:
        # A bad value names its option; a missing argument or a wrong flag needs the usage, of the subcommand
        # where there is one ("codec-bench curve --help").
        usage = error.ctx.command_path if error.ctx is not None else prog
        wrong_value = isinstance(error, click.BadParameter) and not isinstance(error, click.MissingParameter)
        hint = "" if wrong_value else f" (see {usage} --help)"
        click.echo(f"{prog}: error: {_one_line(error.format_message())}{hint}", err=True)
        sys.exit(USAGE_ERROR)
    except click.ClickException as error:
        click.echo(f"{prog}: error: {_one_line(error.format_message())}", err=True)
        sys.exit(error.exit_code)
    except BrokenPipeError as error:
        if not _standard_output_unread():  # a pipe of the command's own: an error like any other
            click.echo(f"{prog}: error: {_os_error_text(error)}", err=True)
            sys.exit(RUNTIME_ERROR)
        # The reader of standard output went away (`| head`): end without a word, as a Unix filter that SIGPIPE
        # kills does (found from outside: "Broken pipe", exit 1). Python's last flush of stdout would fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(128 + signal.SIGPIPE)
    except expected as error:
        # An OSError the command expects reads as any other (found from outside: "[Errno 13] Permission denied: ...")
        text = _os_error_text(error) if isinstance(error, OSError) else str(error)
        click.echo(f"{prog}: error: {_one_line(text)}", err=True)
        sys.exit(RUNTIME_ERROR)
    except KeyboardInterrupt as error:
        _interrupted(prog, error)
    except OSError as error:
        click.echo(f"{prog}: error: {_os_error_text(error)}", err=True)
        sys.exit(RUNTIME_ERROR)


def _standard_output_unread() -> bool:
    """Whether standard output is a pipe that nothing reads any more (poll reports POLLERR on the write end of a
    pipe whose every reader has closed it)."""
    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no stdout, or one without a descriptor
        return False


def _os_error_text(error: OSError) -> str:
    """"PATH: reason", as `cp` says it, or the error's own words where it names no path or reason."""
    if not error.strerror:
        return str(error)
    return f"{error.filename}: {error.strerror}" if error.filename else error.strerror


def _interrupted(prog: str, cause: BaseException | None) -> None:
    if isinstance(cause, Terminated):
        click.echo(f"{prog}: terminated", err=True)
        sys.exit(TERMINATED)
    if sys.stderr.isatty():  # after the terminal's "^C", on a line of its own
        click.echo(err=True)
    click.echo(f"{prog}: interrupted", err=True)
    sys.exit(INTERRUPTED)


def check_audio_outputs(outputs: Mapping[str, Path | None]) -> None:
    """A usage error (exit 2) for an audio output whose name gives no format soundfile writes: a mistake in the
    command, as codec-encode's audio-named OUTPUT is (found from outside: exit 1 here, 2 there)."""
    for name, path in outputs.items():
        if path is not None:
            try:
                check_writable_format(path)
            except AudioFileError as error:
                raise click.BadParameter(str(error), param_hint=name) from None


def check_binary_outputs(outputs: Mapping[str, Path | None]) -> None:
    """A usage error for a binary output (audio, a bitstream) that would go to standard output on a terminal,
    where it shows as garbage and may upset the terminal; gzip and flac refuse the same (found from outside)."""
    for name, path in outputs.items():
        if path is not None and writes_stdout(path) and sys.stdout is not None and sys.stdout.isatty():
            raise click.BadParameter("standard output is a terminal, and this output is binary: redirect it to a "
                                     "file (> FILE) or a pipe, or give a file name", param_hint=name)


def check_outputs(outputs: Mapping[str, Path | None], inputs: Mapping[str, Path | None] | None = None,
                  parents: bool = False) -> None:
    """Before any work: each given output (option name -> path) must be neither an input nor another output
    (a usage error, exit 2), and its folder must take a new file (OSError naming it, exit 1).

    With `parents` a missing folder is fine where it could be created (writers that create their folders).
    """
    given = [(name, Path(path)) for name, path in outputs.items() if path is not None]
    sources = [(name, Path(path)) for name, path in (inputs or {}).items() if path is not None]
    for index, (name, path) in enumerate(given):
        for source_name, source in sources:
            if same_file(output_target(path), source):
                raise click.BadParameter(f"{path} is the input file ({source_name} {source}); writing it would "
                                         "destroy the input: give another output path", param_hint=name)
        for other_name, other in given[:index]:
            if same_file(output_target(path), output_target(other)):
                raise click.BadParameter(f"{path} is also given to {other_name}: give each output its own path",
                                         param_hint=name)
    for _name, path in given:
        check_can_create(path, parents)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def model_dir_callback(ctx: click.Context, param: click.Parameter, text: str | None) -> str | Path | None:
    """--model: an existing directory; 'default' or absent pass through to `resolve_model_dir` unchecked."""
    if text is None or text == DEFAULT_NAME:
        return text
    if Path(text).is_file():  # most often a training checkpoint: say how to get the folder the runtime loads
        # ... but only a checkpoint's name (found from outside: an audio file was told to be exported).
        how = (f" (codec-export --onnx --checkpoint {text} --out DIR)" if Path(text).suffix.lower() == ".pt"
               else ", e.g. one that codec-export --onnx --out DIR wrote")
        raise click.BadParameter(f"{text} is a file; --model takes the folder of an exported model{how}", ctx=ctx,
                                 param=param)
    click.Path(exists=True, file_okay=False).convert(text, param, ctx)
    return typed_folder(text)
