"""Finding a model directory and reading the streaming graphs' contract from their metadata."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from sscodec.common.bundled import BUNDLED_MODEL_DIR, DEFAULT_NAME
from sscodec.common.errors import ModelError
from sscodec.common.model_files import DECODER_STREAM, ENCODER_STREAM
from sscodec.common.rate import CodeRate

# DESIGN.md's ONNX contract: graph inputs and outputs by name.
STREAM_GRAPH_IO = {
    ENCODER_STREAM: (("audio", "state"), ("codes", "next_state")),
    DECODER_STREAM: (("codes", "state"), ("audio", "next_state")),
}
SHARED_METADATA = ("sample_rate", "frame_size", "n_codebooks", "codebook_size")


@dataclass(frozen=True)
class ModelInfo(CodeRate):
    """What the runtime needs to know about an exported codec, read from the graphs' metadata; its rate
    fields and bitrate arithmetic are `CodeRate`'s."""

    encoder_state_size: int | None  # None for a model opened to decode only (CodecModel's decode_only)
    decoder_state_size: int
    codec_config: dict
    # SHA-256 hex of the codec's weights and configuration, stamped by codec-export (export/metadata.py
    # codec_fingerprint); None for graphs exported before it was.
    codec_fingerprint: str | None = None


def resolve_model_dir(model_dir: str | Path | None) -> Path:
    """The directory to load: `model_dir` if given, else (None or the string "default") the bundled default model.

    A Path is always a folder, so `--model ./default` (which Path spells "default") is the folder (found from
    outside: it loaded the bundled model instead).
    """
    if model_dir is not None and model_dir != DEFAULT_NAME:
        return Path(model_dir)
    if BUNDLED_MODEL_DIR.is_dir():
        return BUNDLED_MODEL_DIR
    raise ModelError(
        "no bundled default model is installed yet: pass --model DIR (a directory with the exported "
        f"{ENCODER_STREAM} and {DECODER_STREAM}, as written by codec-export)"
    )


def stream_graph_paths(model_dir: Path, names: tuple[str, ...] = (ENCODER_STREAM, DECODER_STREAM)) -> tuple[Path, ...]:
    """Paths of the stream graphs `names` (both by default), checked to exist."""
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir}: model directory not found")
    paths = tuple(model_dir / name for name in names)
    for path in paths:
        if not path.is_file():
            raise ModelError(f"{path}: missing (export the model with codec-export --onnx --out {model_dir})")
    return paths


def read_decoder_info(decoder: ort.InferenceSession, model_dir: Path) -> ModelInfo:
    """The decoder stream graph checked against the ONNX contract, and the metadata it carries (all a receiver
    needs; `encoder_state_size` None)."""
    _check_io(DECODER_STREAM, decoder, model_dir)
    dec = _metadata(decoder, model_dir / DECODER_STREAM)
    _check_state_size(DECODER_STREAM, decoder, dec, model_dir)
    return _info(dec, None, model_dir / DECODER_STREAM)


def read_model_info(encoder: ort.InferenceSession, decoder: ort.InferenceSession, model_dir: Path) -> ModelInfo:
    """Check both stream graphs against the ONNX contract and return their shared metadata."""
    for name, session in ((ENCODER_STREAM, encoder), (DECODER_STREAM, decoder)):
        _check_io(name, session, model_dir)
    enc = _metadata(encoder, model_dir / ENCODER_STREAM)
    dec = _metadata(decoder, model_dir / DECODER_STREAM)
    for key in SHARED_METADATA:
        if enc[key] != dec[key]:
            raise ModelError(f"{model_dir}: {ENCODER_STREAM} and {DECODER_STREAM} disagree on {key}")
    # Same shapes but another model's weights would decode every code into noise without any error.
    if enc["codec_config"] != dec["codec_config"]:
        raise ModelError(f"{model_dir}: {ENCODER_STREAM} and {DECODER_STREAM} come from different models "
                         "(their codec_config differs)")
    if enc["codec_fingerprint"] != dec["codec_fingerprint"]:
        raise ModelError(f"{model_dir}: {ENCODER_STREAM} and {DECODER_STREAM} come from different models "
                         "(their codec_fingerprint differs)")
    for name, session, values in ((ENCODER_STREAM, encoder, enc), (DECODER_STREAM, decoder, dec)):
        _check_state_size(name, session, values, model_dir)
    return _info(dec, enc["state_size"], model_dir / ENCODER_STREAM)


def _check_io(name: str, session: ort.InferenceSession, model_dir: Path) -> None:
    inputs = tuple(i.name for i in session.get_inputs())
    outputs = tuple(o.name for o in session.get_outputs())
    if (inputs, outputs) != STREAM_GRAPH_IO[name]:
        expected_in, expected_out = STREAM_GRAPH_IO[name]
        raise ModelError(
            f"{model_dir / name}: graph has inputs {list(inputs)} and outputs {list(outputs)}, "
            f"expected {list(expected_in)} and {list(expected_out)}"
        )


def _check_state_size(name: str, session: ort.InferenceSession, values: dict, model_dir: Path) -> None:
    declared = session.get_inputs()[1].shape[-1]
    # A wrong state_size would only fail inside ONNX Runtime, on the first chunk.
    if isinstance(declared, int) and declared != values["state_size"]:
        raise ModelError(f"{model_dir / name}: metadata state_size={values['state_size']} but the graph's "
                         f"state input holds {declared} values")


def _info(dec: dict, encoder_state_size: int | None, path: Path) -> ModelInfo:
    """ModelInfo from the decoder's metadata (equal to the encoder's where both were read), range-checked."""
    info = ModelInfo(
        sample_rate=dec["sample_rate"],
        frame_size=dec["frame_size"],
        n_codebooks=dec["n_codebooks"],
        codebook_size=dec["codebook_size"],
        encoder_state_size=encoder_state_size,
        decoder_state_size=dec["state_size"],
        codec_config=dec["codec_config"],
        codec_fingerprint=dec["codec_fingerprint"],
    )
    if min(info.sample_rate, info.frame_size, info.n_codebooks) < 1 or info.codebook_size < 2:
        raise ModelError(f"{path}: metadata out of range ({info})")
    return info


def _metadata(session: ort.InferenceSession, path: Path) -> dict:
    """The graph's metadata_props with the integer keys parsed and codec_config decoded."""
    props = session.get_modelmeta().custom_metadata_map
    values: dict = {}
    for key in (*SHARED_METADATA, "state_size"):
        try:
            values[key] = int(props[key])
        except KeyError:
            raise ModelError(f"{path}: metadata_props lacks {key!r} (not exported by codec-export?)") from None
        except ValueError:
            raise ModelError(f"{path}: metadata {key}={props[key]!r} is not an integer") from None
    try:
        values["codec_config"] = json.loads(props.get("codec_config", "{}"))
    except json.JSONDecodeError:
        raise ModelError(f"{path}: metadata codec_config is not valid JSON") from None
    fingerprint = props.get("codec_fingerprint")
    if fingerprint is not None and not re.fullmatch(r"[0-9a-f]{64}", fingerprint):
        raise ModelError(f"{path}: metadata codec_fingerprint is not 64 hex digits")
    values["codec_fingerprint"] = fingerprint
    return values
