"""`codec-bench web`: what a frame costs the in-browser codec, and what its cut encoders save.

In headless Chromium (Playwright driving Debian's `chromium`; the page's own ONNX Runtime Web, WebAssembly SIMD,
one thread), served by codec-stream's page server: for each codebook count Q, the encoder cut to Q searches
(`encoder_stream.onnx?codebooks=Q`, what the page runs) and the whole encoder, one frame per call on the same
speech, interleaved call by call (each with its own state), and the decoder at Q. The same calls through the
Python runtime (onnxruntime, one thread), so the browser's cost is also a ratio to the native one measured in the
same run. Medians skip the first WARMUP_FRAMES frames.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from sscodec.benchmarks.errors import BenchError
from sscodec.stream.model import CodecModel
from sscodec.stream.runtime import RuntimeOptions, StreamRunner
from sscodec.stream.web_server import CodecPageServer

WARMUP_FRAMES = 50
CHROMIUM = "chromium"

# Runs in the page (not its worker, which sits idle once the page is ready): the page's own codec.js.
_PAGE_SCRIPT = """async ([counts, audio]) => {
  const base = new URL('./', location.href);
  const codec = await import('./codec.js');
  const ort = await import('./vendor/onnxruntime-web/ort.wasm.min.mjs');
  const config = await codec.fetchModelConfig(base);
  const model = await codec.CodecModel.load({ ...config, codebooks: config.n_codebooks }, base);
  const { frame_size: size, n_codebooks: n } = config;
  const frames = audio.length / size;
  const state = (key) => new ort.Tensor('float32', new Float32Array(config[key]), [1, config[key]]);
  const results = [];
  for (const q of counts) {
    const graphs = { cut: await model.encoderFor(q), whole: await model.encoderFor(n) };
    const states = { cut: state('encoder_state_size'), whole: state('encoder_state_size') };
    const decoder = new codec.StreamDecoder(model);
    const ms = { cut: [], whole: [], decode: [] };
    let sameFrames = 0;
    for (let f = 0; f < frames; f++) {
      const frame = Float32Array.from(audio.slice(f * size, (f + 1) * size));
      const codes = {};
      for (const key of f % 2 ? ['cut', 'whole'] : ['whole', 'cut']) {
        const t0 = performance.now();
        const feeds = { audio: new ort.Tensor('float32', frame, [1, size]), state: states[key] };
        const out = await model.run(graphs[key], feeds);
        ms[key].push(performance.now() - t0);
        states[key] = out.next_state;
        codes[key] = Array.from(out.codes.data.subarray(0, q), Number); // [1, Q or n, 1]: the first q
      }
      sameFrames += codes.cut.every((code, c) => code === codes.whole[c]);
      const t0 = performance.now();
      await decoder.decode(Int32Array.from(codes.cut), 1, q);
      ms.decode.push(performance.now() - t0);
    }
    results.push({ codebooks: q, ms, sameFrames });
  }
  return { results, userAgent: navigator.userAgent, ortVersion: codec.ORT_VERSION };
}"""


def chromium_path() -> str:
    """Debian's chromium (Playwright's own browser download is never used); BenchError if it is missing."""
    path = shutil.which(CHROMIUM)
    if path is None:
        raise BenchError("chromium not found: install it (requirements/system.txt; scripts/setup.sh does)")
    return path


@contextmanager
def _page_server(model: CodecModel) -> Iterator[str]:
    server = CodecPageServer(("127.0.0.1", 0), model, model.info.n_codebooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()


def _median(values: list[float]) -> float:
    return float(np.median(values[WARMUP_FRAMES:]))


def _python_ms(model: CodecModel, audio: np.ndarray, codebooks: int) -> dict[str, float]:
    """Median ms per 1-frame call through onnxruntime here: cut and whole encoder interleaved, then the decoder."""
    frame = model.info.frame_size
    runners = {"cut": StreamRunner(model.encoder_graph_for(codebooks)), "whole": StreamRunner(model.encoder_graph)}
    decoder = StreamRunner(model.decoder_graph)
    ms: dict[str, list[float]] = {"cut": [], "whole": [], "decode": []}
    for index, chunk in enumerate(audio.reshape(-1, frame)):
        codes = {}
        for key in ("cut", "whole") if index % 2 else ("whole", "cut"):
            start = time.perf_counter()
            codes[key] = runners[key].run(chunk[None])
            ms[key].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        decoder.run(codes["cut"])
        ms["decode"].append((time.perf_counter() - start) * 1000)
    return {key: _median(values) for key, values in ms.items()}


def run_web(model_dir: Path, audio: np.ndarray, counts: list[int]) -> dict:
    """Per codebook count: median ms per 1-frame call in Chromium and in Python, cut encoder, whole encoder and
    decoder, and the share of frames whose cut codes equal the whole graph's. `audio`: mono float32 at the
    model's rate, whole frames (more than WARMUP_FRAMES of them). BenchError when Chromium or Playwright is
    missing or the page fails."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BenchError(
            "Playwright is not installed: run scripts/setup.sh (it installs requirements/all.lock)"
        ) from None
    model = CodecModel(model_dir, RuntimeOptions(intra_op_threads=1, inter_op_threads=1))
    frames = audio.size // model.info.frame_size
    if frames <= WARMUP_FRAMES or audio.size % model.info.frame_size:
        raise BenchError(f"need whole frames, more than {WARMUP_FRAMES} of them; got {audio.size} samples")
    executable = chromium_path()
    with _page_server(model) as url, sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, headless=True)
            try:
                page = browser.new_page()
                page.goto(url)
                page.evaluate("window.sscodec.ready")
                measured = page.evaluate(_PAGE_SCRIPT, [counts, audio.astype(np.float32).tolist()])
            finally:
                browser.close()
        except PlaywrightError as error:
            raise BenchError(f"the page failed in Chromium: {str(error).splitlines()[0]}") from None
    cases = []
    for result in measured["results"]:
        q = result["codebooks"]
        python = _python_ms(model, audio, q)
        browser_ms = {key: _median(values) for key, values in result["ms"].items()}
        cases.append({
            "codebooks": q,
            "kbps": model.info.bitrate_kbps(q),
            "frames": frames,
            "browser_ms": browser_ms,
            "python_ms": python,
            # At every codebook the cut graph is the whole one: a difference would be timing noise.
            "cut_saves_browser": None if q == model.info.n_codebooks else 1 - browser_ms["cut"] / browser_ms["whole"],
            "cut_saves_python": None if q == model.info.n_codebooks else 1 - python["cut"] / python["whole"],
            "browser_over_python": (browser_ms["cut"] + browser_ms["decode"]) / (python["cut"] + python["decode"]),
            "cut_codes_equal_frames": result["sameFrames"] / frames,
        })
    return {"user_agent": measured["userAgent"], "onnxruntime_web": measured["ortVersion"], "cases": cases}
