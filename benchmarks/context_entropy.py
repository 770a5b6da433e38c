"""What context would buy the entropy coder: held-out cross-entropy of the codes under static and context tables.

    python -m sscodec.benchmarks.context_entropy --train TRAIN_DIR --eval DIR [--eval DIR...] [--model default]
        [--max-clips 60] [--groups 4,16,64,256] [--both-groups 4,8,16] [--learned 64,128] [--cache DIR] [--json FILE]

On a shared machine run it with OMP_NUM_THREADS=1 (threaded BLAS on these small matrices only contends); each
folder's codes are computed once and kept in --cache. Every table is estimated on the codes of TRAIN_DIR (the
stream encoder's own, as `codec-export` counts them) and scored on each --eval folder: bits per code as a share of
the raw 10 bits (README, "Bitstream"). The contexts:

- `static`: one table per codebook, as shipped (`entropy_tables.npz`: counts + 1).
- `adaptive per packet` / `per clip`: the static table as a prior that counts what has been coded so far (a
  Dirichlet mixture: p(x) = (seen(x) + prior · static(x)) / (seen + prior)), restarted every packet of 50 frames
  (packets stay independent) or once per clip (a file decodable only from its start).
- `prev frame`: a codebook's code given the previous frame's code in the same codebook, that code reduced to G
  groups; `prev codebook`: given the code of the codebook before it in the same frame (codebook 0 stays static);
  `both`: given both, as G × G groups. G = 1024 is no reduction (the previous code itself).
- `learned context, H hidden`: the bitstream's context model (export/context_model.py, as `codec-export
  --context-model` trains it, with H hidden units) on continuous context: the previous frame's quantized latent
  and the partial sum of the frame's coded codebook vectors, restarted every packet of 50 frames. Scored as the
  runtime codes (stream/context_coder.py's integer network); its row also gives the float network's bits, the
  range-coded payloads (32-bit words, raw fallback per packet, as `codec-encode` writes them) and whole files
  (packet headers and records included) against raw, the worst full packet, and the CPU time per frame to
  encode (all frames of a set) and to decode (the first packets of telugu/val, one code at a time).

Groups come from distributional clustering on the training codes: k-means over the previous codes' next-code
distributions with the coding cost (cross-entropy) as distance, so a group holds previous codes that predict
alike. A context's table is its counts smoothed toward the static table (`prior` pseudo-counts, chosen by
two-fold cross-validation on the training clips), so no code is ever uncodable. Table sizes count 16-bit
frequencies per row plus the 1,024-entry group map per codebook: what a shipped table would take.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from sscodec.benchmarks.machine import describe, machine_info
from sscodec.common.audio import audio_files_below
from sscodec.export.context_model import (
    PACKET_FRAMES,
    codebook_vectors,
    frames_of,
    integer_arrays,
    train_network,
)
from sscodec.export.tables import clip_codes
from sscodec.stream.bitstream import RECORD_SIZE
from sscodec.stream.context_coder import ContextCoder
from sscodec.stream.model_dir import resolve_model_dir
from sscodec.stream.packet import PACKET_HEADER_SIZE
from sscodec.stream.packing import packed_size

PRIORS = (16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0)
KMEANS_ITERATIONS = 25
TABLE_ENTRY_BYTES = 2


@dataclass(frozen=True)
class Context:
    """How a code's context group is found: `source` "frame" (previous frame, same codebook), "codebook"
    (previous codebook, same frame) or "both", and how many groups each previous code is reduced to."""

    source: str
    groups: int

    @property
    def name(self) -> str:
        size = f"{self.groups} x {self.groups}" if self.source == "both" else str(self.groups)
        return {"frame": "prev frame", "codebook": "prev codebook", "both": "both"}[self.source] + f", {size} groups"


def static_log_probs(clips: list[np.ndarray], codebook_size: int) -> np.ndarray:
    """log2 of the shipped static tables [Q, size]: counts + 1 (common/entropy_tables.py's floor), normalised."""
    counts = np.ones((clips[0].shape[0], codebook_size))
    for codes in clips:
        for q, row in enumerate(codes):
            counts[q] += np.bincount(row, minlength=codebook_size)
    return np.log2(counts / counts.sum(axis=1, keepdims=True))


def pairs(clips: list[np.ndarray], q: int, source: str) -> tuple[np.ndarray, ...]:
    """(previous codes..., code) over all clips for codebook q: the events a context table is estimated from.

    "frame" pairs each code with the previous frame's code (a clip's first frame has none: previous code -1);
    "codebook" with codebook q-1's code in the same frame; "both" gives both.
    """
    previous_frame, previous_book, current = [], [], []
    for codes in clips:
        row = codes[q]
        previous_frame.append(np.concatenate([[-1], row[:-1]]))
        previous_book.append(codes[q - 1] if q else np.full_like(row, -1))
        current.append(row)
    frame, book, code = (np.concatenate(x).astype(np.int64) for x in (previous_frame, previous_book, current))
    if source == "frame":
        return frame, code
    if source == "codebook":
        return book, code
    return frame, book, code


def cluster(previous: np.ndarray, code: np.ndarray, groups: int, size: int, seed: int = 0) -> np.ndarray:
    """A map [size] from previous code to group (0..groups-1): k-means with cross-entropy as the distance.

    Each previous code's next-code counts are a row; a group's distribution is the sum of its rows; a row goes to
    the group that codes its events in the fewest bits. Rows are sparse (a few events each), so k-means starts
    from `spectral_start`, which sees structure that no single row shows.
    """
    if groups >= size:
        return np.arange(size)
    seen = previous >= 0
    rows = np.zeros((size, size))
    np.add.at(rows, (previous[seen], code[seen]), 1.0)
    mass = rows.sum(axis=1)
    assignment = spectral_start(rows, groups, np.random.default_rng(seed))
    for _ in range(KMEANS_ITERATIONS):
        sums = np.eye(groups)[assignment].T @ rows
        log_p = np.log2((sums + 0.5) / (sums + 0.5).sum(axis=1, keepdims=True))
        cost = -rows @ log_p.T  # [size, groups]: bits to code each previous code's events with each group
        new = np.where(mass > 0, cost.argmin(axis=1), assignment)
        if np.array_equal(new, assignment):
            break
        assignment = new
    return assignment


def spectral_start(rows: np.ndarray, groups: int, rng: np.random.Generator, restarts: int = 4) -> np.ndarray:
    """Groups of the rows of a contingency table [size, size]: weighted k-means (best of `restarts` k-means++
    starts) on the rows' principal coordinates in correspondence analysis (its first groups-1 axes, at most 32)."""
    mass, columns, total = rows.sum(axis=1), rows.sum(axis=0), rows.sum()
    seen = mass > 0
    r, c = np.maximum(mass, 1e-12), np.maximum(columns, 1e-12)
    residual = (rows - np.outer(mass, columns) / total) / np.sqrt(np.outer(r, c))
    dims = max(1, min(groups - 1, 32))
    u, singular = _top_singular(residual, dims, rng)
    points = np.where(seen[:, None], u * singular / np.sqrt(r)[:, None], 0.0)
    weights = mass / total
    best, best_inertia = None, np.inf
    for _ in range(restarts):
        assignment, inertia = _weighted_kmeans(points, weights, groups, rng)
        if inertia < best_inertia:
            best, best_inertia = assignment, inertia
    return best


def _top_singular(matrix: np.ndarray, k: int, rng: np.random.Generator, power: int = 2) -> tuple[np.ndarray, ...]:
    """The first k left singular vectors and values of `matrix` (randomised range finder with power steps)."""
    basis = np.linalg.qr(matrix @ rng.standard_normal((matrix.shape[1], k + 10)))[0]
    for _ in range(power):
        basis = np.linalg.qr(matrix @ (matrix.T @ basis))[0]
    u, singular, _ = np.linalg.svd(basis.T @ matrix, full_matrices=False)
    return (basis @ u)[:, :k], singular[:k]


def _weighted_kmeans(points: np.ndarray, weights: np.ndarray, groups: int, rng: np.random.Generator,
                     iterations: int = 30) -> tuple[np.ndarray, float]:
    """Lloyd's k-means with weighted points and k-means++ seeds: the assignment and its weighted inertia."""
    chosen = [rng.choice(points.shape[0], p=weights)]
    nearest = ((points - points[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(groups - 1):
        chance = nearest * weights
        chance = chance / chance.sum() if chance.sum() > 0 else weights
        chosen.append(rng.choice(points.shape[0], p=chance))
        nearest = np.minimum(nearest, ((points - points[chosen[-1]]) ** 2).sum(axis=1))
    centres = points[chosen].copy()
    squares = (points**2).sum(axis=1)
    for _ in range(iterations):
        distance = squares[:, None] - 2 * points @ centres.T + (centres**2).sum(axis=1)[None]
        assignment = distance.argmin(axis=1)
        totals = np.zeros((groups, points.shape[1]))
        np.add.at(totals, assignment, points * weights[:, None])
        mass = np.bincount(assignment, weights=weights, minlength=groups)
        centres = np.where(mass[:, None] > 0, totals / np.maximum(mass, 1e-300)[:, None], centres)
    return assignment, float((distance.min(axis=1) * weights).sum())


def group_index(events: tuple[np.ndarray, ...], maps: list[np.ndarray], groups: int) -> np.ndarray:
    """Each event's context row: groups per map, plus a last row for events with no previous code."""
    index = np.zeros(events[0].shape, dtype=np.int64)
    missing = np.zeros(events[0].shape, dtype=bool)
    for previous, mapping in zip(events[:-1], maps):
        missing |= previous < 0
        index = index * groups + mapping[np.maximum(previous, 0)]
    return np.where(missing, groups ** len(maps), index)


@dataclass
class ContextTables:
    """One codebook's context tables: the group maps and log2 probabilities [rows, size]."""

    maps: list[np.ndarray]
    groups: int
    log_probs: np.ndarray

    def bits(self, events: tuple[np.ndarray, ...]) -> float:
        return float(-self.log_probs[group_index(events, self.maps, self.groups), events[-1]].sum())


def group_maps(events: tuple[np.ndarray, ...], groups: int, size: int) -> list[np.ndarray]:
    """One group map per previous-code source of `events`, clustered on them."""
    return [cluster(previous, events[-1], groups, size) for previous in events[:-1]]


def fit(events: tuple[np.ndarray, ...], maps: list[np.ndarray], groups: int, static: np.ndarray,
        prior: float) -> ContextTables:
    """One codebook's context tables from its training events: counts per group, smoothed toward `static`."""
    rows = groups ** len(maps) + 1
    counts = np.zeros((rows, static.size))
    np.add.at(counts, (group_index(events, maps, groups), events[-1]), 1.0)
    probabilities = (counts + prior * 2.0**static) / (counts.sum(axis=1, keepdims=True) + prior)
    return ContextTables(maps, groups, np.log2(probabilities))


def choose_prior(clips: list[np.ndarray], q: int, context: Context, size: int) -> float:
    """The smoothing prior with the lowest two-fold cross-validated bits on the training clips."""
    totals = np.zeros(len(PRIORS))
    for train, held in ((clips[0::2], clips[1::2]), (clips[1::2], clips[0::2])):
        static = static_log_probs(train, size)[q]
        events, held_events = pairs(train, q, context.source), pairs(held, q, context.source)
        maps = group_maps(events, context.groups, size)
        totals += [fit(events, maps, context.groups, static, prior).bits(held_events) for prior in PRIORS]
    return PRIORS[int(np.argmin(totals))]


def occurrences_before(codes: np.ndarray, window: int) -> np.ndarray:
    """For each position of codes [frames]: how often its code occurred earlier in the same `window` frames."""
    keys = codes.astype(np.int64) + (np.arange(codes.size) // window) * (int(codes.max()) + 1)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    rank = np.arange(codes.size) - np.repeat(starts, np.diff(np.r_[starts, codes.size]))
    before = np.empty_like(rank)
    before[order] = rank
    return before


def adaptive_bits(clips: list[np.ndarray], q: int, static: np.ndarray, prior: float, window: int | None) -> float:
    """Bits to code codebook q of `clips` with the static table as a prior updated by the codes coded so far,
    restarted every `window` frames (None: once per clip)."""
    bits = 0.0
    for codes in clips:
        row = codes[q]
        span = row.size if window is None else window
        seen = np.arange(row.size) % span
        p = (occurrences_before(row, span) + prior * 2.0 ** static[row]) / (seen + prior)
        bits -= float(np.log2(p).sum())
    return bits


def table_bytes(context: Context | None, n_codebooks: int, size: int) -> int:
    """What the tables would take shipped: 16-bit frequencies per row, a 1-byte or 2-byte group map per source."""
    if context is None:
        return n_codebooks * size * TABLE_ENTRY_BYTES
    maps = 2 if context.source == "both" else 1
    rows = context.groups**maps + 1
    map_bytes = 0 if context.groups >= size else maps * size * (1 if context.groups <= 256 else 2)
    return n_codebooks * (rows * size * TABLE_ENTRY_BYTES + map_bytes)


def evaluate(train: list[np.ndarray], eval_sets: dict[str, list[np.ndarray]], contexts: list[Context],
             size: int, bits_per_code: float, progress: Callable[[str], None] = print) -> list[dict]:
    """Per model (static, then each context): bits per code as a share of raw, per eval set and per codebook."""
    n_codebooks = train[0].shape[0]
    static = static_log_probs(train, size)
    rows = []

    def share(bits: np.ndarray, clips: list[np.ndarray]) -> list[float]:
        frames = sum(c.shape[1] for c in clips)
        return [float(b / frames / bits_per_code) for b in bits]

    static_bits = {
        name: np.array([-static[q, np.concatenate([c[q] for c in clips])].sum() for q in range(n_codebooks)])
        for name, clips in [("train (in-sample)", train), *eval_sets.items()]
    }
    rows.append({"model": "static", "table_bytes": table_bytes(None, n_codebooks, size), "priors": None,
                 "sets": {name: _summary(share(bits, _clips_of(name, train, eval_sets)))
                          for name, bits in static_bits.items()}})
    for label, window in (("adaptive per packet (50 frames)", 50), ("adaptive per clip", None)):
        progress(f"scoring {label} ...")
        priors = [PRIORS[int(np.argmin([adaptive_bits(train, q, static[q], prior, window) for prior in PRIORS]))]
                  for q in range(n_codebooks)]
        sets = {}
        for name in static_bits:
            clips = _clips_of(name, train, eval_sets)
            bits = np.array([adaptive_bits(clips, q, static[q], priors[q], window) for q in range(n_codebooks)])
            sets[name] = _summary(share(bits, clips))
        rows.append({"model": label, "table_bytes": table_bytes(None, n_codebooks, size), "priors": priors,
                     "sets": sets})
    for context in contexts:
        progress(f"fitting {context.name} ...")
        priors, fitted = [], []
        for q in range(n_codebooks):
            if context.source != "frame" and q == 0:  # no codebook before the first: it stays static
                fitted.append(None)
                priors.append(None)
                continue
            prior = choose_prior(train, q, context, size)
            priors.append(prior)
            events = pairs(train, q, context.source)
            fitted.append(fit(events, group_maps(events, context.groups, size), context.groups, static[q], prior))
        sets = {}
        for name in static_bits:
            clips = _clips_of(name, train, eval_sets)
            bits = np.array([
                static_bits[name][q] if tables is None else tables.bits(pairs(clips, q, context.source))
                for q, tables in enumerate(fitted)
            ])
            sets[name] = _summary(share(bits, clips))
        rows.append({"model": context.name, "source": context.source, "groups": context.groups,
                     "table_bytes": table_bytes(context, n_codebooks, size), "priors": priors, "sets": sets})
    return rows


def learned_row(train: list[np.ndarray], eval_sets: dict[str, list[np.ndarray]], vectors: np.ndarray, hidden: int,
                bits_per_code: float, progress: Callable[[str], None] = print) -> dict:
    """The context model with `hidden` units, trained on `train`, scored on each set (see the module docstring)."""
    import torch

    progress(f"training the learned context model, {hidden} hidden ...")
    started = time.perf_counter()
    network = train_network(train, vectors, hidden, progress=progress)
    seconds = time.perf_counter() - started
    arrays = integer_arrays(network)
    coder = ContextCoder({name: array.astype(np.int64) for name, array in arrays.items()})
    sets, encode_seconds, encoded_frames = {}, 0.0, 0
    for name, clips in [("train (in-sample)", train), *eval_sets.items()]:
        current, previous, has = frames_of(clips)
        with torch.no_grad():
            log_p = torch.log_softmax(network(current, previous, current.shape[1] * has), -1)
        float_bits = -log_p.gather(2, current[..., None])[..., 0].sum(0).numpy() / np.log(2)
        integer_bits = np.zeros(current.shape[1])
        coded = raw = files = raw_files = 0
        worst = 0.0
        for codes in clips:
            for start in range(0, codes.shape[1], PACKET_FRAMES):
                packet = codes[:, start : start + PACKET_FRAMES].astype(np.int64)
                frequencies = coder.packet_frequencies(packet).reshape(-1, coder.codebook_size)
                chosen = frequencies[np.arange(frequencies.shape[0]), packet.T.reshape(-1)]
                integer_bits -= np.log2(chosen / frequencies.sum(axis=1)).reshape(-1, packet.shape[0]).sum(0)
                if name == "train (in-sample)":
                    continue
                began = time.perf_counter()
                payload = len(coder.encode(packet))
                encode_seconds += time.perf_counter() - began
                encoded_frames += packet.shape[1]
                size = packed_size(packet.shape[0], packet.shape[1], int(bits_per_code))
                framing = PACKET_HEADER_SIZE + RECORD_SIZE
                coded, raw = coded + min(payload, size), raw + size
                files, raw_files = files + min(payload, size) + framing, raw_files + size + framing
                if packet.shape[1] == PACKET_FRAMES:
                    worst = max(worst, min(payload, size) / size)
        frames = current.shape[0]
        sets[name] = {**_summary([float(b / frames / bits_per_code) for b in integer_bits]),
                      "float": float(float_bits.sum() / frames / bits_per_code / current.shape[1])}
        if raw:
            sets[name].update(payload=coded / raw, file=files / raw_files, worst_packet=worst)
    decode_codes = eval_sets[next(iter(eval_sets))][0][:, : 4 * PACKET_FRAMES].astype(np.int64)
    began = time.perf_counter()
    for start in range(0, decode_codes.shape[1], PACKET_FRAMES):
        packet = decode_codes[:, start : start + PACKET_FRAMES]
        assert np.array_equal(coder.decode(coder.encode(packet), *packet.shape), packet)
    decode_ms = (time.perf_counter() - began) * 1e3 / decode_codes.shape[1]
    table_bytes = sum(array.size * array.dtype.itemsize for array in arrays.values())
    return {"model": f"learned context, {hidden} hidden", "hidden": hidden, "table_bytes": table_bytes,
            "priors": None, "train_seconds": seconds, "encode_ms_per_frame": encode_seconds * 1e3 / encoded_frames,
            "decode_ms_per_frame": decode_ms, "sets": sets}


def _clips_of(name: str, train: list[np.ndarray], eval_sets: dict[str, list[np.ndarray]]) -> list[np.ndarray]:
    return train if name == "train (in-sample)" else eval_sets[name]


def _summary(per_codebook: list[float]) -> dict:
    return {"mean": float(np.mean(per_codebook)), "per_codebook": per_codebook}


def load_codes(model_dir: Path, folder: Path, max_clips: int | None, cache: Path | None) -> list[np.ndarray]:
    """The stream encoder's codes of each clip in `folder` (the first `max_clips`), cached by model and files."""
    files = audio_files_below(folder)[:max_clips]
    key = hashlib.sha256(
        "\n".join([(model_dir / "encoder_stream.onnx").read_bytes().hex()[:64], *map(str, files)]).encode()
    ).hexdigest()[:16]
    path = cache / f"codes-{folder.name}-{key}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path) as archive:
            return [archive[f"c{i}"] for i in range(len(archive.files))]
    clips = [c.astype(np.int16) for c in clip_codes(model_dir, files)[0]]
    if path is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{f"c{i}": c for i, c in enumerate(clips)})
    return clips


def markdown(rows: list[dict], names: list[str]) -> str:
    lines = ["| model | table size | " + " | ".join(names) + " |", "| --- | --- |" + " --- |" * len(names)]
    for row in rows:
        size = f"{row['table_bytes'] / 1e6:.2f} MB"
        lines.append(f"| {row['model']} | {size} | " + " | ".join(f"{row['sets'][n]['mean']:.1%}" for n in names)
                     + " |")
    learned = [row for row in rows if "hidden" in row]
    if learned:
        held = names[1:]
        lines += ["", ("Learned context models in detail (per held-out set: float network / integer network / "
                  "range-coded payloads / whole files, all against raw; worst full packet):"), "",
                  "| model | train s | encode ms/frame | decode ms/frame | " + " | ".join(held) + " | mean |",
                  "| --- | --- | --- | --- |" + " --- |" * (len(held) + 1)]
        for row in learned:
            cells = [f"{s['float']:.1%} / {s['mean']:.1%} / {s['payload']:.1%} / {s['file']:.1%}; "
                     f"worst {s['worst_packet']:.1%}" for s in (row["sets"][n] for n in held)]
            mean = np.mean([row["sets"][n]["file"] for n in held])
            lines.append(f"| {row['model']} | {row['train_seconds']:.0f} | {row['encode_ms_per_frame']:.2f} | "
                         f"{row['decode_ms_per_frame']:.2f} | " + " | ".join(cells) + f" | files {mean:.1%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--eval", type=Path, action="append", required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--max-clips", type=int, default=60, help="Clips per --eval folder (all of --train).")
    parser.add_argument("--groups", default="4,16,64,256", help="Group counts G, comma-separated.")
    parser.add_argument("--both-groups", default="4,8,16", help="Group counts G of the G x G 'both' context.")
    parser.add_argument("--learned", default="",
                        help="Hidden sizes of learned context models to train and score, comma-separated.")
    parser.add_argument("--cache", type=Path, default=None, help="Folder to keep the computed codes in.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    model_dir = resolve_model_dir(args.model)
    train = load_codes(model_dir, args.train, None, args.cache)
    eval_sets = {f"{folder.parent.name}/{folder.name}": load_codes(model_dir, folder, args.max_clips, args.cache)
                 for folder in args.eval}
    groups = [int(g) for g in args.groups.split(",")]
    both = [int(g) for g in args.both_groups.split(",")]
    contexts = ([Context("frame", g) for g in [*groups, 1024]] + [Context("codebook", g) for g in [*groups, 1024]]
                + [Context("both", g) for g in both])
    size = clip_codes(model_dir, [])[1]["codebook_size"]
    bits = float(np.log2(size))
    rows = evaluate(train, eval_sets, contexts, size, bits)
    n_codebooks = train[0].shape[0]
    vectors = codebook_vectors(model_dir, n_codebooks, size)
    rows += [learned_row(train, eval_sets, vectors, int(h), bits) for h in args.learned.split(",") if h]
    names = ["train (in-sample)", *eval_sets]
    counts = {name: {"clips": len(clips), "frames": int(sum(c.shape[1] for c in clips))}
              for name, clips in [("train (in-sample)", train), *eval_sets.items()]}
    table = markdown(rows, names)
    print(table)
    if args.json:
        args.json.write_text(json.dumps({"model": str(model_dir), "train": str(args.train), "sets": counts,
                                         "machine": machine_info(), "rows": rows}, indent=1))
        sets = ", ".join(f"{name} {c['clips']} clips ({c['frames']:,} frames)" for name, c in counts.items())
        args.json.with_suffix(".md").write_text(
            f"# Context for the entropy coder\n\nBits per code as a share of raw ({bits:g} bits), tables estimated on "
            f"`{args.train}`, model `{model_dir}`; {sets}. Machine: {describe(machine_info())}.\n\n{table}\n")
        figure(rows, names).savefig(args.json.with_suffix(".png"), dpi=100)


def figure(rows: list[dict], names: list[str]) -> Figure:
    """Bits per code as a share of raw per set (groups of bars), for the static tables, the best discrete context
    on the first held-out set, and each learned context model; the 85 % target as a line."""
    learned = [row for row in rows if "hidden" in row]
    discrete = [row for row in rows[1:] if "hidden" not in row]
    shown = [rows[0], *([min(discrete, key=lambda r: r["sets"][names[1]]["mean"])] if discrete else []), *learned]
    fig = Figure(figsize=(2 + 1.6 * len(names), 4.5))
    ax = fig.subplots()
    width = 0.8 / len(shown)
    for index, row in enumerate(shown):
        ax.bar(np.arange(len(names)) + index * width, [100 * row["sets"][n]["mean"] for n in names], width,
               label=row["model"])
    ax.axhline(85, color="black", linestyle="--", linewidth=1, label="85 % target")
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, fontsize=8)
    ax.set_ylabel("bits per code, % of raw")
    ax.set_ylim(40, 100)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
