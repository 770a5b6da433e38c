"""A loaded model: both stream graphs, their contract metadata, the model's fingerprint, its entropy tables and
its context model."""

from __future__ import annotations

import functools
import hashlib
import threading
from pathlib import Path

import onnx
import onnxruntime as ort
from google.protobuf.message import DecodeError

from sscodec.common.context_model_file import CONTEXT_FILE, context_fingerprint, load_context_model
from sscodec.common.entropy_tables import TABLES_FILE, load_tables, tables_fingerprint
from sscodec.common.errors import ModelError, first_line
from sscodec.common.model_files import DECODER_STREAM, ENCODER_STREAM, model_name
from sscodec.stream.codebook_search import search_only
from sscodec.stream.context_coder import ContextCoder
from sscodec.stream.entropy import EntropyCoder, PacketCoder
from sscodec.stream.model_dir import ModelInfo, read_decoder_info, read_model_info, stream_graph_paths
from sscodec.stream.packet import CodingMode
from sscodec.stream.runtime import RuntimeOptions, StreamGraph

FINGERPRINT_SIZE = 8


class CodecModel:
    """The exported model in `directory`, shared by any number of StreamEncoders and StreamDecoders.

    The sessions hold no stream state (each encoder and decoder keeps its own), so sharing them is safe.
    `decode_only` opens decoder_stream.onnx alone (a receiver's folder may hold nothing else); the encoder's
    members then raise ModelError. Raises ModelError for a missing, corrupt or inconsistent directory.
    """

    def __init__(self, directory: Path, runtime: RuntimeOptions | None = None, decode_only: bool = False) -> None:
        runtime = runtime or RuntimeOptions()
        self.directory = Path(directory)
        self._runtime = runtime
        if decode_only:
            (decoder_path,) = stream_graph_paths(self.directory, (DECODER_STREAM,))
            self._encoder_graph: StreamGraph | None = None
            self.decoder_graph = StreamGraph(decoder_path, runtime)
            self.info: ModelInfo = read_decoder_info(self.decoder, self.directory)
        else:
            encoder_path, decoder_path = stream_graph_paths(self.directory)
            self._encoder_graph = StreamGraph(encoder_path, runtime)
            self.decoder_graph = StreamGraph(decoder_path, runtime)
            self.info = read_model_info(self.encoder, self.decoder, self.directory)
        self._searching: dict[int, StreamGraph] = {}
        self._cut_models: dict[int, bytes | None] = {}
        self._cut_lock = threading.Lock()

    @property
    def encoder_graph(self) -> StreamGraph:
        """encoder_stream.onnx; ModelError for a model opened to decode only."""
        if self._encoder_graph is None:
            raise ModelError(f"{self.directory / ENCODER_STREAM}: not opened (this model was opened to decode only)")
        return self._encoder_graph

    @property
    def encoder(self) -> ort.InferenceSession:
        """encoder_stream.onnx's session for chunks of any size."""
        return self.encoder_graph.session

    @property
    def decoder(self) -> ort.InferenceSession:
        """decoder_stream.onnx's session for chunks of any size."""
        return self.decoder_graph.session

    def encoder_graph_for(self, codebooks: int) -> StreamGraph:
        """The encoder graph for a sender of the first `codebooks` codebooks: one that searches only those
        (stream/codebook_search.py; the same codes, opened once per count), or the whole graph where its codes
        cannot be cut. ValueError for a count outside 1..n_codebooks; ModelError if the file no longer loads."""
        if codebooks not in self._searching:
            trimmed = self.encoder_model_for(codebooks)  # checks the count
            self._searching[codebooks] = (
                self.encoder_graph if trimmed is None
                else StreamGraph(self.encoder_graph.path, self._runtime, trimmed)
            )
        return self._searching[codebooks]

    def encoder_model_for(self, codebooks: int) -> bytes | None:
        """encoder_stream.onnx cut to search only the first `codebooks` codebooks, serialized (what
        `encoder_graph_for` runs, and what the browser page loads for that count); None where the whole graph
        is the one to run (all codebooks, or codes that cannot be cut). ValueError for a count outside
        1..n_codebooks; ModelError if the file no longer loads."""
        if not 1 <= codebooks <= self.info.n_codebooks:
            raise ValueError(f"codebooks must be in 1..{self.info.n_codebooks} for this model, got {codebooks}")
        if codebooks == self.info.n_codebooks:
            return None
        with self._cut_lock:  # the page's server asks from a thread per request: each count is cut once
            if codebooks not in self._cut_models:
                path = self.encoder_graph.path
                try:
                    trimmed = search_only(onnx.load(path), codebooks)
                except (OSError, DecodeError) as error:
                    raise ModelError(f"{path}: cannot read ({first_line(error)})") from None
                except ValueError as error:  # fewer searches than its metadata says: the file changed since
                    raise ModelError(f"{path}: {first_line(error)}") from None
                self._cut_models[codebooks] = None if trimmed is None else trimmed.SerializeToString()
            return self._cut_models[codebooks]

    def prepare(self, chunk_frames: int, codebooks: int) -> None:
        """Open the fixed-shape decoder session for chunks of `chunk_frames` frames of `codebooks` codebooks
        (StreamEngine does; chunks of other shapes still run, on the session for any shape).

        The decoder only: measured per 1-frame chunk, a fixed-shape decoder session is 5 % faster, a fixed-shape
        encoder session 2 % slower (README, "Speed").
        """
        self.decoder_graph.fix_shape((1, codebooks, chunk_frames))

    @property
    def name(self) -> str:
        """How messages and file headers name this model: its folder's name ("default" for the bundled one,
        "NAME/int8" for a precision folder; common/model_files.py)."""
        return model_name(self.directory)

    @functools.cached_property
    def fingerprint(self) -> bytes:
        """8 bytes that name this codec in compressed files and calls: the first of the graphs' codec_fingerprint
        (SHA-256 over the weights and configuration, so a re-export of the same checkpoint keeps it).

        Graphs exported before codec-export stamped one: SHA-256 over both stream graph files instead (any
        re-export changes it; reading 13 MB costs tens of milliseconds, once), so such a folder needs both.
        """
        if self.info.codec_fingerprint is not None:
            return bytes.fromhex(self.info.codec_fingerprint)[:FINGERPRINT_SIZE]
        if self._encoder_graph is None and not (self.directory / ENCODER_STREAM).is_file():
            raise ModelError(f"{self.directory / DECODER_STREAM} was exported before codec-export stamped a "
                             f"fingerprint, so this model is named by both graphs: copy its {ENCODER_STREAM} too")
        digest = hashlib.sha256()
        for path in stream_graph_paths(self.directory):
            try:
                digest.update(path.read_bytes())
            except OSError as error:
                raise ModelError(f"{path}: cannot read ({error.strerror or error})") from None
        return digest.digest()[:FINGERPRINT_SIZE]

    @property
    def tables_path(self) -> Path:
        return self.directory / TABLES_FILE

    @property
    def has_tables(self) -> bool:
        return self.tables_path.is_file()

    @functools.cached_property
    def _tables(self) -> tuple[EntropyCoder, bytes]:
        if not self.has_tables:
            raise ModelError(f"{self.tables_path}: missing (codec-export writes it; or use raw coding)")
        counts = load_tables(self.tables_path, self.info.n_codebooks, self.info.codebook_size)
        return EntropyCoder(counts), tables_fingerprint(counts)

    @property
    def entropy_coder(self) -> EntropyCoder:
        """The range coder with this model's tables; ModelError if the tables are missing or unusable."""
        return self._tables[0]

    @property
    def tables_fingerprint(self) -> bytes:
        """8 bytes identifying the tables (same errors as `entropy_coder`)."""
        return self._tables[1]

    @property
    def context_path(self) -> Path:
        return self.directory / CONTEXT_FILE

    @property
    def has_context_model(self) -> bool:
        return self.context_path.is_file()

    @functools.cached_property
    def _context(self) -> tuple[ContextCoder, bytes]:
        if not self.has_context_model:
            raise ModelError(f"{self.context_path}: missing (codec-export --context-model writes it)")
        arrays = load_context_model(self.context_path, self.info.n_codebooks, self.info.codebook_size)
        return ContextCoder(arrays), context_fingerprint(arrays)

    @property
    def context_fingerprint(self) -> bytes:
        """8 bytes identifying the context model; ModelError if it is missing or unusable."""
        return self._context[1]

    def coder(self, mode: CodingMode) -> PacketCoder | None:
        """The range coder of packets in `mode` (None for RAW); ModelError if its tables or context model are
        missing or unusable."""
        if mode is CodingMode.ENTROPY:
            return self._tables[0]
        return self._context[0] if mode is CodingMode.CONTEXT else None
