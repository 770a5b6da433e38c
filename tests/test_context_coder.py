"""The context model's integer network and range coder: exact integers, round trips, a checked file format, and
codec-export --context-model as users run it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_stream_model import copy_model, export_tiny_model

from sscodec.common.bundled import EXAMPLE_CLIP
from sscodec.common.context_model_file import (
    CONTEXT_FILE,
    context_fingerprint,
    context_shapes,
    load_context_model,
    save_context_model,
)
from sscodec.common.errors import ModelError
from sscodec.stream import context_coder
from sscodec.stream.context_coder import ContextCoder
from sscodec.stream.model import CodecModel
from sscodec.stream.packet import CodingMode

BIN = Path(sys.executable).parent
Q, K, D, H, LAYERS = 4, 64, 8, 16, 2


def random_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """A context model of full-range integers: int16 weights near ±2^15, so float32 (or any rounding) arithmetic
    would give other frequencies than the integer network."""
    rng = np.random.default_rng(seed)
    shapes = context_shapes(Q, K, D, H, LAYERS, 200)
    arrays = {name: rng.integers(-(2**15) + 1, 2**15, shape) for name, shape in shapes.items()
              if name in ("codebooks", "previous_projection", "partial_projection", "hidden", "output")}
    arrays["bias"] = rng.integers(-(2**20), 2**20, shapes["bias"])
    arrays["previous_count"] = rng.integers(-(2**20), 2**20, shapes["previous_count"])
    arrays["hidden_bias"] = rng.integers(-(2**38), 2**38, shapes["hidden_bias"])
    arrays["output_bias"] = rng.integers(-(2**38), 2**38, shapes["output_bias"])
    arrays["exp_table"] = np.maximum(1, np.round(2**16 * np.exp(-np.arange(200) / 8))).astype(np.int64)
    arrays["shifts"] = np.array([8, 14, 3, 12, 13])
    return arrays


def reference_logits(a: dict[str, np.ndarray], previous: list[int] | None, codes: list[int], q: int) -> list[int]:
    """The network in Python integers, one code at a time, as the file format's docstring defines it."""
    activation, weight, _, vector_bits, projection_bits = (int(s) for s in a["shifts"])
    top = 2**15 - 1
    count = 0 if previous is None else len(previous)

    def lookup(name: str, book: int, code: int, h: int) -> int:
        product = sum(int(a["codebooks"][book, code, d]) * int(a[f"{name}_projection"][book, d, h]) for d in range(D))
        bits = vector_bits + projection_bits - activation
        return (product + (1 << bits >> 1)) >> bits

    first = []
    for h in range(H):
        value = int(a["bias"][q, h]) + int(a["previous_count"][count, h])
        value += sum(lookup("previous", p, c, h) for p, c in enumerate(previous or []))
        value += sum(lookup("partial", p, codes[p], h) for p in range(q))
        first.append(min(max(value, 0), top))
    hidden = first
    for layer in range(LAYERS):
        totals = [sum(int(a["hidden"][layer, h, j]) * hidden[j] for j in range(H)) + int(a["hidden_bias"][layer, h])
                  for h in range(H)]
        hidden = [min(max(hidden[h] + max((totals[h] + (1 << weight >> 1)) >> weight, 0), 0), top) for h in range(H)]
    return [sum(hidden[j] * int(a["output"][q, j, k]) for j in range(H)) + int(a["output_bias"][q, k])
            for k in range(K)]


def reference_frequencies(a: dict[str, np.ndarray], logits: list[int]) -> list[int]:
    """The softmax lookup in Python integers."""
    activation, weight, step = (int(s) for s in a["shifts"][:3])
    best, shift, table = max(logits), activation + weight - step, a["exp_table"]
    return [int(table[min((best - logit) >> shift, len(table) - 1)]) for logit in logits]


def test_the_integer_network_equals_python_integers() -> None:
    """Logits of up to 2^34 from full-range weights, equal to the last unit: any float rounding would show."""
    arrays = random_arrays()
    coder = ContextCoder({name: value.astype(np.int64) for name, value in arrays.items()})
    codes = np.random.default_rng(1).integers(0, K, (Q, 3))
    batched = coder.packet_frequencies(codes)
    for t in range(3):
        previous = None if t == 0 else codes[:, t - 1]
        first = coder.first_layer(coder.context(previous), codes[:, t])
        for q in range(Q):
            expected = reference_logits(arrays, None if t == 0 else previous.tolist(), codes[:, t].tolist(), q)
            assert coder.logits(first[q : q + 1], q)[0].tolist() == expected, (t, q)
            assert max(map(abs, expected)) > 2**30
            assert batched[t, q].tolist() == reference_frequencies(arrays, expected), (t, q)


@pytest.mark.parametrize(("codebooks", "frames"), [(Q, 1), (Q, 9), (1, 5), (3, 7)])
def test_round_trip_of_any_codes(codebooks: int, frames: int) -> None:
    coder = ContextCoder({name: value.astype(np.int64) for name, value in random_arrays(2).items()})
    codes = np.random.default_rng(frames).integers(0, K, (codebooks, frames))
    payload = coder.encode(codes)
    np.testing.assert_array_equal(coder.decode(payload, codebooks, frames), codes)


def test_encoding_and_decoding_run_blas_on_one_thread_and_restore_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Found from outside: OpenBLAS's thread per core made codec-encode 5-30x slower on a 2-core machine with
    # another busy process (README, "Bitstream").
    # The libraries numpy had loaded when the coder was imported (numpy is imported first), which its products run
    # on: a BLAS loaded later by other modules (scipy's own OpenBLAS, once another test imported the coder first)
    # is none of the coder's business, and once made this test measure the wrong library.
    blas = context_coder._BLAS.select(user_api="blas")
    if not blas.lib_controllers:
        pytest.skip("numpy here links no BLAS that threadpoolctl can limit")
    coder = ContextCoder({name: value.astype(np.int64) for name, value in random_arrays(5).items()})
    seen: list[int] = []
    real_logits = coder.logits

    def logits_counting_threads(first: np.ndarray, codebook: int) -> np.ndarray:
        seen.append(max(info["num_threads"] for info in blas.info()))
        return real_logits(first, codebook)

    monkeypatch.setattr(coder, "logits", logits_counting_threads)
    before = blas.info()
    with blas.limit(limits=2):  # as numpy starts on a 2-core machine, whatever this one has
        codes = np.random.default_rng(6).integers(0, K, (Q, 4))
        np.testing.assert_array_equal(coder.decode(coder.encode(codes), Q, 4), codes)
        assert max(info["num_threads"] for info in blas.info()) == 2
    assert seen and set(seen) == {1}
    assert blas.info() == before


def test_payloads_that_cannot_hold_the_codes_are_refused() -> None:
    coder = ContextCoder({name: value.astype(np.int64) for name, value in random_arrays(3).items()})
    codes = np.random.default_rng(4).integers(0, K, (Q, 40))
    payload = coder.encode(codes)
    with pytest.raises(ValueError, match="not a valid range-coded payload"):
        coder.decode(payload[:4], Q, 100000)  # runs out of words long before
    with pytest.raises(ValueError, match="not whole 32-bit words"):
        coder.decode(payload[:-1], Q, 40)
    with pytest.raises(ValueError, match=f"codebooks must be in 1..{Q}"):
        coder.decode(payload, Q + 1, 1)


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=64).map(lambda b: b[: len(b) // 4 * 4]), codebooks=st.integers(1, Q),
       frames=st.integers(1, 20))
def test_context_decoder_on_arbitrary_words_gives_codes_or_a_value_error(payload: bytes, codebooks: int,
                                                                        frames: int) -> None:
    coder = ContextCoder({name: value.astype(np.int64) for name, value in random_arrays(5).items()})
    try:
        codes = coder.decode(payload, codebooks, frames)
    except ValueError:
        return
    assert codes.shape == (codebooks, frames) and codes.min() >= 0 and codes.max() < K


def test_the_file_is_checked(tmp_path: Path) -> None:
    arrays = random_arrays()
    path = tmp_path / CONTEXT_FILE
    save_context_model(path, arrays)
    loaded = load_context_model(path, Q, K)
    assert context_fingerprint(loaded) == context_fingerprint(arrays)
    with pytest.raises(ModelError, match=r"codebooks is int64 \(4, 64, 8\), the model needs integers \(12, 64, 8\)"):
        load_context_model(path, 12, K)
    for name, value, message in [("output", arrays["output"].astype(np.float32), "output is float32"),
                                 ("hidden", arrays["hidden"] * 2, "hidden holds values beyond"),
                                 ("exp_table", arrays["exp_table"] - 1, "exp_table must decrease"),
                                 ("shifts", np.array([8, 40, 3, 12, 13]), "shifts"),
                                 ("shifts", np.array([30, 14, 3, 12, 13]), "shifts")]:
        save_context_model(path, {**arrays, name: value})
        with pytest.raises(ModelError, match=message) as caught:
            load_context_model(path, Q, K)
        assert "\n" not in str(caught.value)
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ModelError, match="not a valid context model file"):
        load_context_model(path, Q, K)
    # Found from outside: text was called "pickled (object) data", with advice to load it unsafely.
    path.write_bytes(b"junk\n")
    with pytest.raises(ModelError) as caught:
        load_context_model(path, Q, K)
    assert str(caught.value) == f"{path}: not a valid context model file (not an .npz archive)"


def test_codec_export_trains_the_context_model_for_an_existing_export(tmp_path: Path) -> None:
    model_dir = copy_model(export_tiny_model(), tmp_path / "tiny")
    speech = tmp_path / "speech"
    speech.mkdir()
    shutil.copy(EXAMPLE_CLIP, speech)
    # Speech must be given (found from outside: without it the example clip was used, silently).
    done = subprocess.run([str(BIN / "codec-export"), "--tables-only", "--context-model", "--out", str(model_dir),
                           "--tables-dir", str(speech)], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert f"{model_dir / CONTEXT_FILE}: context model trained on" in done.stdout
    assert "context model epoch 3/3" in done.stdout
    model = CodecModel(model_dir)
    coder = model.coder(CodingMode.CONTEXT)
    assert isinstance(coder, ContextCoder) and coder.n_codebooks == model.info.n_codebooks
