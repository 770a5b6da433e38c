"""sscodec: a streaming neural speech codec.

One import namespace over the repository's folders (setuptools maps each into it): `sscodec.common` (torch-free
shared pieces), `sscodec.codec` (the torch model), `sscodec.train`, `sscodec.export`, `sscodec.stream` (the edge
runtime) and `sscodec.benchmarks`. See docs/CONTRACTS.md for how they may import each other.
"""

import os as _os
import signal as _signal
import sys as _sys

# The installed commands ([project.scripts] in pyproject.toml; a test keeps the two equal).
COMMANDS = frozenset({"codec-train", "codec-export", "codec-stream", "codec-encode", "codec-decode", "codec-bench"})


def interrupted_while_starting(signum: int, frame: object) -> None:
    """Ctrl-C while a command still imports its libraries (a second or so): nothing has started to unwind, so
    the one line `common/cli.run_cli` gives later, not Python's traceback from inside an import."""
    _sys.stderr.write(f"{_os.path.basename(_sys.argv[0])}: interrupted\n")
    _os._exit(130)


# Only for our own commands (this package is a library too), and only where Ctrl-C would raise: a process that
# ignores SIGINT (started in the background) keeps ignoring it. run_cli puts Python's handler back.
if (_sys.argv and _os.path.basename(_sys.argv[0]) in COMMANDS
        and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler):
    _signal.signal(_signal.SIGINT, interrupted_while_starting)
