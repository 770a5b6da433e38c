"""Running `codec-stream --answer` / `--call` as processes in tests: start, read the printed URL, stop."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "codec-stream"
URL = re.compile(r"waiting for a call at (http://\S+) \(token (\S+)\)")


class StreamProcess:
    """A codec-stream process whose stdout lines are collected as they come."""

    def __init__(self, args: list[str], stdin: int | None = None) -> None:
        self.args = args
        self.process = subprocess.Popen(
            [str(SCRIPT), *args], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.stdout.append(line)
            self.lines.put(line)

    def wait_for(self, pattern: re.Pattern, timeout_s: float = 60.0) -> re.Match:
        """The first stdout line matching `pattern`; AssertionError after `timeout_s` or if the process ends."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            found = pattern.search(line)
            if found:
                return found
        raise AssertionError(
            f"no line matching {pattern.pattern!r}; stdout {self.stdout}, stderr {self.finish(5)[1]}"
        )

    def interrupt(self) -> None:
        """Ctrl-C."""
        self.process.send_signal(signal.SIGINT)

    def finish(self, timeout_s: float = 60.0) -> tuple[int, str]:
        """Wait for the exit (killing it after `timeout_s`); (exit code, stderr)."""
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"codec-stream {' '.join(self.args)} did not exit in {timeout_s} s"
            ) from None
        self._reader.join(5)
        return self.process.returncode, self.process.stderr.read()

    @property
    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    @property
    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def answer(args: list[str], timeout_s: float = 60.0, stdin: int | None = None) -> tuple[StreamProcess, str, str]:
    """Start `codec-stream --answer 127.0.0.1:0 ARGS` (standard input from the file descriptor `stdin`, if given);
    the process, the URL it printed and the token."""
    process = StreamProcess(["--answer", "127.0.0.1:0", *args], stdin)
    found = process.wait_for(URL, timeout_s)
    return process, found.group(1), found.group(2)


def call_pair(
    folder: Path,
    model: Path,
    answer_clip: Path,
    call_clip: Path,
    answer_args: tuple[str, ...] = (),
    call_args: tuple[str, ...] = (),
) -> tuple[StreamProcess, StreamProcess]:
    """An answering and a calling codec-stream, file in and file out: FOLDER/a.wav and a.json for the answering
    side, b.wav and b.json for the caller."""

    def files(side: str, clip: Path) -> list[str]:
        return [
            "--input",
            str(clip),
            "--output",
            str(folder / f"{side}.wav"),
            "--model",
            str(model),
            "--stats-json",
            str(folder / f"{side}.json"),
        ]

    answering, url, token = answer([*files("a", answer_clip), *answer_args])
    calling = StreamProcess(["--call", url, "--token", token, *files("b", call_clip), *call_args])
    return answering, calling
