"""Encoder graphs that search only the codebooks a stream sends.

The residual VQ searches its codebooks in order, each on what the ones before it left, so the first k codes
never depend on the later codebooks. A sender of k codebooks need not search the rest: its graph is the
exported one with the codes' Concat cut to its first k inputs and every node and weight that then feeds no
output dropped. The codes are the full graph's first k, bit for bit, and the state is untouched (the search
keeps none). What it saves is the other codebooks' search tables (about latent_dim × codebook_size floats
each: 256 KiB for `small`), read once per call, and their nodes: measured per 1-frame chunk in README, "Speed".

    encoder ─► latent ─► search 1 ─► residual ─► search 2 ─► … ─► search k ─► … ─► search Q
                            │                        │                 │                │
                            └──────────── Concat(axis 1) ── codes [B, Q, K] ────────────┘
    cut to:                 └──────── Concat ── codes [B, k, K]  (searches k+1..Q dropped)
"""

from __future__ import annotations

import onnx

CODES = "codes"  # the encoder graphs' codes output (docs/CONTRACTS.md)


def search_only(model: onnx.ModelProto, codebooks: int) -> onnx.ModelProto | None:
    """A copy of encoder graph `model` whose `codes` output holds only the first `codebooks` codebooks
    [B, codebooks, K], with what no output needs any more removed; None where `model`'s codes are not a Concat
    of one input per codebook along axis 1 (then nothing can be cut: run the whole graph). ValueError for a
    `codebooks` outside 1..the graph's count."""
    index = next((i for i, node in enumerate(model.graph.node) if CODES in node.output), None)
    concat = None if index is None else model.graph.node[index]
    if concat is None or concat.op_type != "Concat" or _axis(concat) != 1:
        return None
    if not 1 <= codebooks <= len(concat.input):
        raise ValueError(f"codebooks must be in 1..{len(concat.input)} for this graph, got {codebooks}")
    trimmed = onnx.ModelProto()
    trimmed.CopyFrom(model)
    graph = trimmed.graph
    del graph.node[index].input[codebooks:]
    _drop_unused(graph)
    dims = next(output for output in graph.output if output.name == CODES).type.tensor_type.shape.dim
    if len(dims) == 3 and dims[1].HasField("dim_value"):
        dims[1].dim_value = codebooks
    return trimmed


def _axis(node: onnx.NodeProto) -> int | None:
    return next((attribute.i for attribute in node.attribute if attribute.name == "axis"), None)


def _drop_unused(graph: onnx.GraphProto) -> None:
    """Remove the nodes and initializers that no graph output depends on (a walk back from the outputs; the
    nodes of an exported graph are in topological order)."""
    needed = {output.name for output in graph.output}
    kept = []
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(node.input)
            for attribute in node.attribute:  # a subgraph's outer-scope names count too
                for subgraph in [*attribute.graphs, *([attribute.g] if attribute.HasField("g") else [])]:
                    needed.update(name for inner in subgraph.node for name in inner.input)
    initializers = [tensor for tensor in graph.initializer if tensor.name in needed]
    value_info = [info for info in graph.value_info if info.name in needed]
    del graph.node[:], graph.initializer[:], graph.value_info[:]
    graph.node.extend(reversed(kept))
    graph.initializer.extend(initializers)
    graph.value_info.extend(value_info)
