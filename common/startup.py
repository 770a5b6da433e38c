"""Ctrl-C while one of our commands still imports its libraries (numpy, onnxruntime, torch: a second or so).

`sscodec/__init__.py` calls `hold_interrupts_while_starting` first thing; `common/cli.run_cli` puts Python's own
handler back once it runs, from where Ctrl-C unwinds the work (README, Reliability: signals).
"""

from __future__ import annotations

import os
import signal
import sys

# The installed commands ([project.scripts] in pyproject.toml; a test keeps the two equal).
COMMANDS = frozenset({"codec-train", "codec-pack", "codec-export", "codec-stream", "codec-encode", "codec-decode",
                      "codec-bench"})


def interrupted_while_starting(signum: int, frame: object) -> None:
    """Nothing has started to unwind yet: the one line run_cli gives later, not Python's traceback from inside an
    import, and exit 130."""
    sys.stderr.write(f"{os.path.basename(sys.argv[0])}: interrupted\n")
    os._exit(130)


def hold_interrupts_while_starting() -> None:
    """Install `interrupted_while_starting` for our own commands only (this package is a library too), and only
    where Ctrl-C would raise: a process that ignores SIGINT (started in the background) keeps ignoring it."""
    if (sys.argv and os.path.basename(sys.argv[0]) in COMMANDS
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGINT, interrupted_while_starting)


def release_interrupts() -> None:
    """Python's handler back where ours was installed (in the main thread): from here Ctrl-C raises."""
    if signal.getsignal(signal.SIGINT) is interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)
