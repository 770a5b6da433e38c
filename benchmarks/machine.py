"""The machine a benchmark ran on: CPU, cores, GPU, load and library versions, for every results file."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path

import onnxruntime as ort

from sscodec.benchmarks.opus import opus_version

LIBRARIES = (
    "numpy",
    "onnxruntime-gpu",
    "onnxruntime",
    "torch",
    "librosa",
    "opuscodec",
    "pesq",
    "pystoi",
    "soundfile",
    "soxr",
)


def machine_info() -> dict:
    """CPU model, logical/physical cores, load average, GPU, ONNX Runtime providers and library versions."""
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": _physical_cores(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "gpu": _gpu_name(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime_providers": ort.get_available_providers(),
        "libraries": {name: _version(name) for name in LIBRARIES if _version(name)},
        "libopus": opus_version(),
    }


def describe(machine: dict) -> str:
    """One line for Markdown headers."""
    gpu = machine["gpu"] or "no GPU"
    load = ", ".join(str(x) for x in machine["load_average_1_5_15"])
    libs = ", ".join(f"{k} {v}" for k, v in machine["libraries"].items())
    return f"{machine['cpu']}, {machine['logical_cores']} logical cores, {gpu}; load average {load}; {libs}"


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _physical_cores() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.cpu_count(logical=False)


def _gpu_name() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
