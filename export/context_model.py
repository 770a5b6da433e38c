"""The bitstream's context model: trained in torch on the exported encoder's codes of speech, saved as integers.

The network (README, "Bitstream") predicts each code of frame t from continuous context: the previous frame's
quantized latent and the partial sum of the codebook vectors already coded in frame t, as EnCodec's entropy model
does with a transformer (Défossez et al. 2022, "High Fidelity Neural Audio Compression", §3.3), here one ReLU
layer, two residual layers and a linear output per codebook. Both context sums are linear in the codebook vectors,
so the first layer is a sum of per-code lookups: the runtime (stream/context_coder.py) needs no codebook vectors.
A file may code fewer codebooks than the model has, so training drops the previous frame's later codebooks at
random (telling the network how many it sees) and scores only the codebooks a file of that many would code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import Tensor, nn

from sscodec.common.context_model_file import CONTEXT_FILE, save_context_model
from sscodec.export.errors import ExportError
from sscodec.export.tables import clip_codes

HIDDEN = 128
LAYERS = 2  # residual layers: a second one saves 0.2-0.6 points on every held-out set (README, "Bitstream")
EPOCHS = 3
BATCH_FRAMES = 256
LEARNING_RATE = 3e-3
PACKET_FRAMES = 50  # training sees packets as the files code them: no previous frame at a packet's start
ACTIVATION_BITS = 8
LOGIT_STEP_BITS = 5  # a softmax step of 1/32 nat: at most 1/64 nat from the float logit
EXP_TABLE_TOP = 2**16


class ContextNetwork(nn.Module):
    """Logits [N, Q, K] of each code of N frames given the frame's own earlier codebooks and the previous frame."""

    def __init__(self, codebooks: np.ndarray, hidden: int, log_prior: np.ndarray) -> None:
        """`codebooks` [Q, K, D]: the quantizer's vectors; `log_prior` [Q, K]: natural-log static probabilities,
        the output bias the training starts from."""
        super().__init__()
        n_codebooks, size, dim = codebooks.shape
        self.register_buffer("codebooks", torch.tensor(codebooks, dtype=torch.float32))
        self.previous = nn.Linear(dim, hidden, bias=False)
        self.partial = nn.Linear(dim, hidden, bias=False)
        self.bias = nn.Parameter(torch.zeros(n_codebooks, hidden))
        self.previous_count = nn.Parameter(torch.zeros(n_codebooks + 1, hidden))
        self.hidden = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(LAYERS)])
        self.output = nn.Parameter(torch.randn(n_codebooks, hidden, size) * 0.02)
        self.output_bias = nn.Parameter(torch.tensor(log_prior, dtype=torch.float32))

    def forward(self, codes: Tensor, previous: Tensor, count: Tensor) -> Tensor:
        """codes, previous [N, Q] (previous codebooks at or past `count` [N] are ignored; count 0: no previous)."""
        books = torch.arange(codes.shape[1])
        vectors = self.codebooks[books, codes]
        partial = vectors.cumsum(1) - vectors
        kept = (books[None] < count[:, None]).float()[..., None]
        previous_sum = (self.codebooks[books, previous] * kept).sum(1)
        first = self.partial(partial) + (self.previous(previous_sum) + self.previous_count[count])[:, None] + self.bias
        hidden = torch.relu(first)
        for layer in self.hidden:
            hidden = hidden + torch.relu(layer(hidden))
        return torch.einsum("nqh,qhk->nqk", hidden, self.output) + self.output_bias


def codebook_vectors(model_dir: Path, n_codebooks: int, codebook_size: int) -> np.ndarray:
    """The residual quantizer's vectors [Q, K, D] from decoder_stream.onnx's initializers (`...quantizers.i.codebook`);
    ExportError if the graph does not hold them."""
    graph = onnx.load(str(model_dir / "decoder_stream.onnx")).graph
    found = {t.name: t for t in graph.initializer if t.name.endswith(".codebook")}
    vectors = []
    for index in range(n_codebooks):
        names = [name for name in found if name.endswith(f"quantizers.{index}.codebook")]
        if len(names) != 1:
            raise ExportError(f"{model_dir / 'decoder_stream.onnx'}: no single codebook {index} initializer")
        vectors.append(numpy_helper.to_array(found[names[0]]).astype(np.float32))
    stacked = np.stack(vectors)
    if stacked.ndim != 3 or stacked.shape[:2] != (n_codebooks, codebook_size):
        raise ExportError(f"codebooks of shape {stacked.shape}, expected [{n_codebooks}, {codebook_size}, dim]")
    return stacked


def frames_of(clips: Sequence[np.ndarray]) -> tuple[Tensor, Tensor, Tensor]:
    """Each frame's codes [N, Q], its previous frame's [N, Q], and whether it has one (not a packet's first) [N]."""
    current, previous, has = [], [], []
    for codes in clips:
        frames = codes.T.astype(np.int64)
        current.append(frames)
        previous.append(np.concatenate([frames[:1], frames[:-1]]))
        has.append(np.arange(frames.shape[0]) % PACKET_FRAMES != 0)
    return tuple(torch.from_numpy(np.concatenate(x)) for x in (current, previous, has))


def train_network(clips: Sequence[np.ndarray], codebooks: np.ndarray, hidden: int = HIDDEN, epochs: int = EPOCHS,
                  seed: int = 0, progress=print) -> ContextNetwork:
    """A ContextNetwork trained on codes [Q, frames] of clips (cross-entropy, Adam, one-cycle schedule)."""
    torch.manual_seed(seed)
    n_codebooks, size, _ = codebooks.shape
    counts = np.ones((n_codebooks, size))
    for codes in clips:
        for q in range(n_codebooks):
            counts[q] += np.bincount(codes[q], minlength=size)
    network = ContextNetwork(codebooks, hidden, np.log(counts / counts.sum(axis=1, keepdims=True)))
    current, previous, has = frames_of(clips)
    steps = max(1, len(current) // BATCH_FRAMES)
    optimiser = torch.optim.Adam(network.parameters(), lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, LEARNING_RATE, total_steps=epochs * steps)
    books = torch.arange(n_codebooks)
    for epoch in range(epochs):
        order = torch.randperm(len(current))
        total = 0.0
        for step in range(steps):
            index = order[step * BATCH_FRAMES : (step + 1) * BATCH_FRAMES]
            # Codebooks a file codes: all of them half the time, else 1..Q-1; the previous frame holds as many.
            coded = torch.where(torch.rand(len(index)) < 0.5, n_codebooks,
                                torch.randint(1, n_codebooks, (len(index),)))
            logits = network(current[index], previous[index], coded * has[index])
            losses = nn.functional.cross_entropy(logits.transpose(1, 2), current[index], reduction="none")
            scored = (books[None] < coded[:, None]).float()
            loss = (losses * scored).sum() / scored.sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item()
        progress(f"context model epoch {epoch + 1}/{epochs}: {total / steps / math.log(2):.3f} bits per code")
    return network


def integer_arrays(network: ContextNetwork) -> dict[str, np.ndarray]:
    """The network in integers, as common/context_model_file.py lays them out: codebook vectors, projections and
    weights each with as many fractional bits as int16 allows (the weights sharing theirs), biases in the units
    they are added to (2^-ACTIVATION_BITS for the first layer)."""
    with torch.no_grad():
        n_codebooks = network.codebooks.shape[0]
        projections = {name: getattr(network, name).weight.T.expand(n_codebooks, -1, -1)
                       for name in ("previous", "partial")}
        codebook_bits = _fraction_bits([network.codebooks])
        projection_bits = _fraction_bits(list(projections.values()))
        hidden_weights = torch.stack([layer.weight for layer in network.hidden])
        hidden_biases = torch.stack([layer.bias for layer in network.hidden])
        weight_bits = _fraction_bits([hidden_weights, network.output])
        a, w = 2.0**ACTIVATION_BITS, 2.0**weight_bits

        def rounded(tensor: Tensor, scale: float, dtype: type) -> np.ndarray:
            values = torch.round(tensor.double() * scale).numpy()
            if np.abs(values).max() > np.iinfo(dtype).max:
                raise ExportError(f"context model weights beyond {np.dtype(dtype).name} at scale {scale:g}")
            return values.astype(dtype)

        steps = 1 << LOGIT_STEP_BITS
        length = math.ceil(steps * math.log(EXP_TABLE_TOP)) + 1
        exp_table = np.maximum(1, np.round(EXP_TABLE_TOP * np.exp(-np.arange(length) / steps))).astype(np.int64)
        return {
            "codebooks": rounded(network.codebooks, 2.0**codebook_bits, np.int16),
            "previous_projection": rounded(projections["previous"], 2.0**projection_bits, np.int16),
            "partial_projection": rounded(projections["partial"], 2.0**projection_bits, np.int16),
            "bias": rounded(network.bias, a, np.int32),
            "previous_count": rounded(network.previous_count, a, np.int32),
            "hidden": rounded(hidden_weights, w, np.int16),
            "hidden_bias": rounded(hidden_biases, a * w, np.int64),
            "output": rounded(network.output, w, np.int16),
            "output_bias": rounded(network.output_bias, a * w, np.int64),
            "exp_table": exp_table,
            "shifts": np.array([ACTIVATION_BITS, weight_bits, LOGIT_STEP_BITS, codebook_bits, projection_bits],
                               dtype=np.int64),
        }


def _fraction_bits(tensors: list[Tensor]) -> int:
    """The most fractional bits (at most 30) that keep every value of `tensors` within int16."""
    return min(30, min(math.floor(math.log2(32767 / float(t.abs().max()))) for t in tensors))


def write_context_model(model_dir: Path, files: Sequence[Path], hidden: int = HIDDEN, epochs: int = EPOCHS,
                        progress=print, into: Path | None = None) -> tuple[Path, int]:
    """Train the context model on the codes `model_dir`/encoder_stream.onnx gives the speech in `files`; write it
    to `into` (default `model_dir`)/context_model.npz. Returns the file and the frames trained on.
    AudioFileError for an unreadable clip, ExportError for a graph without codebook vectors."""
    clips_iter, sizes = clip_codes(model_dir, files)
    clips = list(clips_iter)
    vectors = codebook_vectors(model_dir, sizes["n_codebooks"], sizes["codebook_size"])
    torch.set_num_threads(min(torch.get_num_threads(), 4))  # small matrices: more threads only contend
    network = train_network(clips, vectors, hidden, epochs, progress=progress)
    path = (into or model_dir) / CONTEXT_FILE
    save_context_model(path, integer_arrays(network))
    return path, sum(codes.shape[1] for codes in clips)
