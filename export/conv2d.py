"""1-D convolutions rewritten as 2-D ones of height 1, for the stream graphs.

The same sums in the same order of taps, but ONNX Runtime's CPU provider has blocked (NCHWc) kernels for 2-D
convolutions only: on one chunk of one frame they ran the `small` stream graphs about 10 % faster (an AMD EPYC
with AVX-512; README, "Speed"). Offline graphs, whose convolutions see thousands of samples, gain nothing.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import helper, numpy_helper

_AXIS = "conv2d_height_axis"


def convs_as_2d(model: onnx.ModelProto) -> int:
    """Rewrite every Conv on [B, C, T] in `model` as Unsqueeze → 2-D Conv → Squeeze; returns how many."""
    graph = model.graph
    ranks = _ranks(model)
    uses = Counter(name for node in graph.node for name in node.input)
    # Weights that feed one conv alone can be reshaped in place; others get an Unsqueeze.
    initializers = {tensor.name: tensor for tensor in graph.initializer if uses[tensor.name] == 1}
    nodes, rewritten = [], 0
    for node in graph.node:
        if node.op_type != "Conv" or ranks.get(node.input[1]) != 3:
            nodes.append(node)
            continue
        x, weight, *bias = node.input
        flat, wide = f"{node.output[0]}_2d", f"{x}_{node.name}_2d"
        nodes.append(helper.make_node("Unsqueeze", [x, _AXIS], [wide]))
        nodes.append(
            helper.make_node(
                "Conv",
                [wide, _weight_2d(weight, initializers, nodes), *bias],
                [flat],
                name=node.name,
                **_attributes_2d(node),
            )
        )
        nodes.append(helper.make_node("Squeeze", [flat, _AXIS], [node.output[0]]))
        rewritten += 1
    if rewritten:
        # The exporter's shape annotations of the reshaped weights would now contradict them.
        stale = [v for v in graph.value_info if len(initializers.get(v.name, onnx.TensorProto()).dims) == 4]
        for value in stale:
            graph.value_info.remove(value)
        graph.initializer.append(numpy_helper.from_array(np.array([2], dtype=np.int64), _AXIS))
        del graph.node[:]
        graph.node.extend(nodes)
    return rewritten


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    """Rank of every value whose shape inference knows it (initializers included)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    values = [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    ranks = {
        v.name: len(v.type.tensor_type.shape.dim) for v in values if v.type.tensor_type.HasField("shape")
    }
    ranks.update({t.name: len(t.dims) for t in model.graph.initializer})
    return ranks


def _weight_2d(name: str, initializers: dict[str, onnx.TensorProto], nodes: list[onnx.NodeProto]) -> str:
    """[O, I, k] → [O, I, 1, k]: a reshaped initializer, or an Unsqueeze that ONNX Runtime folds at load."""
    tensor = initializers.get(name)
    if tensor is None:
        nodes.append(helper.make_node("Unsqueeze", [name, _AXIS], [f"{name}_2d"]))
        return f"{name}_2d"
    tensor.dims.insert(2, 1)  # the same bytes, with one more axis of size 1
    return name


def _attributes_2d(node: onnx.NodeProto) -> dict[str, object]:
    """The conv's attributes with a leading height axis: kernel 1, stride 1, dilation 1, no padding."""
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    for key in ("kernel_shape", "strides", "dilations"):
        if key in attributes:
            attributes[key] = [1, *attributes[key]]
    if "pads" in attributes:
        begin, end = attributes["pads"]
        attributes["pads"] = [0, begin, 0, end]
    return attributes
