"""The one error type `codec-bench` reports as a single line (exit code 1)."""

from __future__ import annotations


class BenchError(Exception):
    """A benchmark that cannot run here: missing model, audio, tool or device."""
