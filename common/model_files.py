"""The layout of an exported model folder: what `codec-export` writes and the runtime loads.

    OUT/
      encoder_stream.onnx  decoder_stream.onnx   stream graphs: all the runtime needs
      encoder.onnx         decoder.onnx          offline graphs (benchmarks, parity)
      entropy_tables.npz   context_model.npz     the bitstream's coders (optional; common/entropy_tables.py,
                                                 common/context_model_file.py)
      MODEL_CARD.md                              what the model is, written by hand (never by codec-export)
      fp16/  int8/                               the same graphs at lower precision, with the same coders

A precision folder is the same codec (the same fingerprint) as its parent, so it is named after both.
"""

from __future__ import annotations

from pathlib import Path

ENCODER_STREAM = "encoder_stream.onnx"
DECODER_STREAM = "decoder_stream.onnx"
MODEL_CARD = "MODEL_CARD.md"
PRECISIONS = ("fp16", "int8")  # the reduced-precision folders, in the order codec-export writes them


def is_export(folder: Path) -> bool:
    """Whether `folder` holds an export (a stream graph: a receiver's folder may hold only the decoder's): what
    codec-export may replace or remove (found from outside: a decoder-only folder was replaced by another model
    without --overwrite)."""
    return any((folder / name).is_file() for name in (ENCODER_STREAM, DECODER_STREAM))


def export_folders(folder: Path) -> list[Path]:
    """The folders of the export in `folder` that hold graphs: `folder` and its precision folders, in that order (a
    receiver may keep fp16/ alone: found from outside, such an export was then taken for none and deleted)."""
    return [path for path in (folder, *(folder / precision for precision in PRECISIONS)) if is_export(path)]


def export_graph(folder: Path) -> Path:
    """The graph that tells which model an export in `folder` is: its encoder stream graph, else its decoder's."""
    encoder = folder / ENCODER_STREAM
    return encoder if encoder.is_file() else folder / DECODER_STREAM


def model_name(folder: Path) -> str:
    """How messages and file headers name the model in `folder`: the folder's name, "PARENT/int8" for a precision
    folder inside an export (found from outside: two models' int8 copies were both named 'int8')."""
    folder = folder.resolve()
    if folder.name in PRECISIONS and is_export(folder.parent):
        return f"{folder.parent.name}/{folder.name}"
    return folder.name
