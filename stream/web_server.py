"""`codec-stream --web`: serve the in-browser codec page (README, "In the browser").

The page runs the two stream graphs itself with ONNX Runtime Web; this server only hands out files: the page's
own (`stream/web/`, installed with the package, ONNX Runtime Web included: no CDN), the model's two stream graphs
(the encoder as `encoder_stream.onnx?codebooks=K` cut to search only the first K codebooks, as a Python sender
runs it: stream/codebook_search.py), and the model's contract read from their metadata by the same code as every
other command (`/api/model`). It also unpacks a dropped `.sscb` file to codes (`/api/sscb`), since the entropy
coder's tables and range coder live here.
Nothing outside those is reachable: static paths are resolved and must stay inside the asset folder.
"""

from __future__ import annotations

import base64
import gzip
import io
import ipaddress
import json
import socket
import sys
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from sscodec.common.errors import StreamError, first_line
from sscodec.common.text import decimal
from sscodec.stream.file_codec import read_checked
from sscodec.stream.model import CodecModel
from sscodec.stream.model_dir import DECODER_STREAM, ENCODER_STREAM

ASSET_DIR = Path(__file__).resolve().parent / "web"
ORT_DIR = ASSET_DIR / "vendor" / "onnxruntime-web"
DEFAULT_HOST = "127.0.0.1"
MAX_UPLOAD_BYTES = 64 << 20  # a .sscb of an hour at 6 kbps is 2.7 MB
UPLOAD_PATH = "/api/sscb"  # POST a bitstream file: its codes and header as JSON
CONFIG_PATH = "/api/model"  # GET the model's configuration, as the page needs it
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
# The page may load code only from this server; WebAssembly needs 'wasm-unsafe-eval' to compile.
CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT, :PORT or PORT (host 127.0.0.1); port 0 picks a free one. ValueError otherwise."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    port = decimal(port_text)
    if port is None or port > 65535:
        raise ValueError(f"expected HOST:PORT with a port in 0..65535, got {text!r}")
    if ":" in host and not _is_ip(host):
        raise ValueError(f"expected HOST:PORT (an IPv6 host in brackets), got {text!r}")
    return host or DEFAULT_HOST, port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def model_config(model: CodecModel, codebooks: int) -> dict:
    """Everything the page needs to know about the model, from its ONNX metadata (no constants in the JS), and
    the codebook count it starts with."""
    info = model.info
    return {
        "name": model.name,
        "codebooks": codebooks,
        "fingerprint": model.fingerprint.hex(),
        "sample_rate": info.sample_rate,
        "frame_size": info.frame_size,
        "frame_ms": info.frame_ms,
        "n_codebooks": info.n_codebooks,
        "codebook_size": info.codebook_size,
        "bits_per_code": info.bits_per_code,
        "kbps_per_codebook": info.bitrate_kbps(1),
        "encoder_state_size": info.encoder_state_size,
        "decoder_state_size": info.decoder_state_size,
        "codec_config": info.codec_config,
        "max_upload_bytes": MAX_UPLOAD_BYTES,  # the page refuses a larger .sscb before sending it
        "precision": model.encoder.get_modelmeta().custom_metadata_map.get("precision", "unknown"),
        "graphs": {"encoder": f"model/{ENCODER_STREAM}", "decoder": f"model/{DECODER_STREAM}"},
        "onnxruntime_web": (ORT_DIR / "VERSION").read_text(encoding="utf-8").strip(),
    }


def unpack_sscb(model: CodecModel, data: bytes, name: str) -> dict:
    """A codec-encode file's codes for the page to decode: JSON-ready, codes as base64 of int32 [frames, Q].

    BitstreamError (one line, starting with `name`) as for codec-decode."""
    header, packets = read_checked(model, io.BytesIO(data), name, for_remote=True)
    codes = np.concatenate(list(packets), axis=1)
    return {
        "codebooks": header.codebooks,
        "frames": int(codes.shape[1]),
        "samples": header.samples,
        "mode": header.mode.name.lower(),
        "codes": base64.b64encode(np.ascontiguousarray(codes.T, dtype="<i4").tobytes()).decode("ascii"),
    }


class CodecPageServer(ThreadingHTTPServer):
    """The HTTP server with the loaded model; each request runs on its own thread."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], model: CodecModel, codebooks: int) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.model = model
        self.config_json = json.dumps(model_config(model, codebooks)).encode("utf-8")
        self.model_files = {
            f"/model/{name}": model.directory / name for name in (ENCODER_STREAM, DECODER_STREAM)
        }
        super().__init__(address, PageHandler)

    def handle_error(self, request: object, client_address: tuple) -> None:
        """A request that failed: nothing when the client went away (a closed tab, a cancelled upload), else one
        line on stderr; never socketserver's traceback, and the server keeps serving."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            return
        print(f"codec-stream: a request from {client_address[0]} failed: {first_line(error)}", file=sys.stderr)

    @property
    def url(self) -> str:
        """The page's URL on this machine: the bound address, or localhost for a wildcard bind (0.0.0.0, ::),
        which no browser can open (found from outside: `--web 0.0.0.0:0` printed http://0.0.0.0:PORT/)."""
        host, port = self.server_address[:2]
        if self.every_interface:
            host = "localhost"
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    @property
    def every_interface(self) -> bool:
        """Bound to a wildcard address: other machines reach the page at this one's addresses."""
        return ipaddress.ip_address(self.server_address[0]).is_unspecified


class PageHandler(BaseHTTPRequestHandler):
    server: CodecPageServer
    server_version = "codec-stream"
    sys_version = ""

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._get(send_body=True)

    def do_HEAD(self) -> None:
        self._get(send_body=False)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if url.path != UPLOAD_PATH:
            # A page or file is there to GET (found from outside: a POST to one was "not found").
            self._not_allowed()
            return
        given = self.headers.get("Content-Length")
        length = decimal(given or "")
        if length is None:
            # RFC 9112, 6.3: an invalid Content-Length is 400 (found from outside: "-5" was 411); 411 is for none.
            if given is None:
                self._error(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is required")
            else:
                self._error(HTTPStatus.BAD_REQUEST, f"Content-Length {given!r} is not a number of bytes")
            return
        if length > MAX_UPLOAD_BYTES:  # named, as every other refusal the page shows (found from outside)
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"{_file_name(url.query)}: files above {MAX_UPLOAD_BYTES >> 20} MB are refused")
            return
        data = self.rfile.read(length)
        try:
            body = json.dumps(unpack_sscb(self.server.model, data, _file_name(url.query))).encode("utf-8")
        except (StreamError, ValueError) as error:
            self._error(HTTPStatus.UNPROCESSABLE_ENTITY, str(error))
            return
        self._send(HTTPStatus.OK, "application/json", body, send_body=True)

    def do_OPTIONS(self) -> None:
        allow = self._allowed(urlsplit(self.path).path)
        if allow is None:
            self._error(HTTPStatus.NOT_FOUND, "not found")
        else:
            self._send(HTTPStatus.NO_CONTENT, "application/json", b"", send_body=False, allow=allow)

    def do_PUT(self) -> None:
        # Found from outside: without these the standard library answered "501 Unsupported method" in HTML. Every
        # method RFC 9110 and RFC 5789 define is one a path may not take (405); others are the library's 501.
        self._not_allowed()

    do_DELETE = do_PATCH = do_TRACE = do_CONNECT = do_PUT

    def _allowed(self, path: str) -> str | None:
        """The methods `path` takes (Allow's value), None where nothing is there."""
        if path == UPLOAD_PATH:
            return "POST"
        return "GET, HEAD" if self._gettable(path) else None

    def _not_allowed(self, send_body: bool = True) -> None:
        """405 naming the methods the request's path takes in Allow; 404 where nothing is there."""
        allow = self._allowed(urlsplit(self.path).path)
        if allow is None:
            self._error(HTTPStatus.NOT_FOUND, "not found", send_body)
        elif allow == "POST":
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "only POST here (a bitstream file to decode)", send_body,
                        allow=allow)
        else:
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "only GET and HEAD here", send_body, allow=allow)

    def _get(self, send_body: bool) -> None:
        url = urlsplit(self.path)
        path = url.path
        if path == UPLOAD_PATH:
            self._not_allowed(send_body)
            return
        if path == CONFIG_PATH:
            self._send(HTTPStatus.OK, "application/json", self.server.config_json, send_body)
            return
        counts = parse_qs(url.query, keep_blank_values=True).get("codebooks")
        if path == f"/model/{ENCODER_STREAM}" and counts is not None:
            self._send_encoder_for(counts, send_body)
            return
        if path in self.server.model_files:
            self._send_file(self.server.model_files[path], send_body)
            return
        file = static_file(path)
        if file is None:
            self._error(HTTPStatus.NOT_FOUND, "not found", send_body)
            return
        self._send_file(file, send_body)

    def _gettable(self, path: str) -> bool:
        return path == CONFIG_PATH or path in self.server.model_files or static_file(path) is not None

    def _send_encoder_for(self, counts: list[str], send_body: bool) -> None:
        """The encoder graph a sender of the first `codebooks` codebooks runs (the file itself where nothing is
        cut), for a query that gives the count once; 400 for anything else."""
        model = self.server.model
        n = model.info.n_codebooks
        count = decimal(counts[0]) if len(counts) == 1 else None
        if count is None or not 1 <= count <= n:
            got = ", ".join(repr(text[:20]) for text in counts) or "none"
            self._error(HTTPStatus.BAD_REQUEST, f"codebooks must be one count in 1..{n} for this model, got {got}",
                        send_body)
            return
        try:
            cut = model.encoder_model_for(count)
        except StreamError as error:  # the file changed under the server: said here, not to the page (a path)
            print(f"codec-stream: {error}", file=sys.stderr)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "the model's encoder graph cannot be read", send_body)
            return
        if cut is None:
            self._send_file(self.server.model_files[f"/model/{ENCODER_STREAM}"], send_body)
        else:
            self._send(HTTPStatus.OK, CONTENT_TYPES[".onnx"], cut, send_body)

    def _send_file(self, path: Path, send_body: bool) -> None:
        content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        if path.suffix == ".gz":  # stored compressed (the ONNX Runtime wasm): sent as what it holds
            content_type = CONTENT_TYPES.get(Path(path.stem).suffix, "application/octet-stream")
        try:
            data = path.read_bytes()
        except OSError as error:
            self._error(
                HTTPStatus.INTERNAL_SERVER_ERROR, f"{path.name}: {error.strerror or error}", send_body
            )
            return
        encoding = None
        if path.suffix == ".gz":
            if accepts_gzip(self.headers.get("Accept-Encoding", "")):
                encoding = "gzip"
            else:
                data = gzip.decompress(data)
        self._send(HTTPStatus.OK, content_type, data, send_body, encoding, negotiated=path.suffix == ".gz")

    def _error(self, status: HTTPStatus, message: str, send_body: bool = True, allow: str | None = None) -> None:
        """A JSON error; `allow` (405's required header) lists the methods the path takes."""
        self._send(status, "application/json", json.dumps({"error": message}).encode("utf-8"), send_body,
                   allow=allow)

    def _send(
        self, status: HTTPStatus, content_type: str, body: bytes, send_body: bool, encoding: str | None = None,
        allow: str | None = None, negotiated: bool = False,
    ) -> None:
        """One response; `negotiated`: the body's encoding followed Accept-Encoding (gzip or not)."""
        self.send_response(status)
        if status != HTTPStatus.NO_CONTENT:  # RFC 9110, 8.6: no Content-Length in a 204
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        if allow:
            self.send_header("Allow", allow)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        if negotiated:
            # RFC 9110, 12.5.5: either answer names what it varied on, so a cache gives neither body to the other
            # kind of client (found from outside: the identity answer had no Vary).
            self.send_header("Vary", "Accept-Encoding")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the terminal shows the address and errors, not every request."""


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether to answer an Accept-Encoding header with gzip (RFC 9110, section 12.5.3): gzip or x-gzip, or else
    `*`, with a weight above 0 and not below identity's where that is listed; names are case-insensitive. Found
    from outside: `gzip;q=0` (a refusal) and `gzip;q=0.5, identity;q=1` were sent gzip."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, *params = (part.strip() for part in item.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0  # a weight that cannot be read: not a yes
        if name:
            weights[name.lower()] = weight
    listed = [weights[name] for name in ("gzip", "x-gzip") if name in weights]
    gzip_weight = max(listed) if listed else weights.get("*", 0.0)
    return gzip_weight > 0 and gzip_weight >= weights.get("identity", 0.0)


def _file_name(query: str) -> str:
    """The uploaded file's name (`?name=`) for messages: printable, one line, at most 100 characters."""
    name = parse_qs(query).get("name", ["the file"])[0][:100]
    return "".join(c if c.isprintable() else "?" for c in name)


def static_file(url_path: str, root: Path = ASSET_DIR) -> Path | None:
    """The asset a URL path names, or None: never anything outside `root` (no '..', no hidden files, no links
    out); a missing file is served from its gzip-compressed copy `NAME.gz` if there is one."""
    relative = unquote(url_path).lstrip("/") or "index.html"
    if "\\" in relative or "\0" in relative or relative.endswith(("/", "/.")):  # a folder: not a file
        return None
    if any(part.startswith(".") for part in PurePosixPath(relative).parts):
        return None
    root = root.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root):
        return None
    if candidate.is_file():
        return candidate
    compressed = candidate.with_name(candidate.name + ".gz")
    return compressed if compressed.is_file() else None


def serve(
    model: CodecModel, codebooks: int, host: str, port: int, announce: Callable[[str], None] = print
) -> None:
    """Serve the page (starting at `codebooks`) until interrupted; StreamError (one line) if the address cannot be
    bound."""
    try:
        server = CodecPageServer((host, port), model, codebooks)
    except OSError as error:
        raise StreamError(f"cannot listen on {host}:{port} ({error.strerror or error})") from None
    with server:
        announce(f"codec-stream: the codec page is at {server.url} (model '{model.name}'; Ctrl-C stops)")
        if server.every_interface:
            announce(f"codec-stream: listening on every interface: other machines open this one's address at "
                     f"port {server.server_address[1]}")
        if not ipaddress.ip_address(server.server_address[0]).is_loopback:
            announce(
                "codec-stream: note: browsers allow the microphone only on https or localhost pages; from "
                "another machine this page can decode files but not use the microphone"
            )
        sys.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:  # Ctrl-C (SIGTERM too, common/cli.py) is how a page server ends: not a failure
            announce("codec-stream: the page server stopped")
