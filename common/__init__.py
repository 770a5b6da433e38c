"""Torch-free pieces every layer needs: audio file I/O, error types, the CLI error wrapper, bundled-model paths.

Depends on numpy, soundfile, soxr and click only; `codec/`, `train/`, `export/` and `stream/` import it, never
the other way round (see the README's architecture section).
"""
