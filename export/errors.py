"""Errors of the exporter; each message is one line a user can act on."""

from __future__ import annotations


class ExportError(RuntimeError):
    """The exporter could not write verified ONNX files."""


class UnsupportedConfigError(ExportError):
    """A codec config that the four ONNX graphs cannot represent."""


class ParityError(ExportError):
    """An exported graph disagrees with the PyTorch model beyond the contract's tolerance."""

