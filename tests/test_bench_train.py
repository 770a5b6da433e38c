"""codec-bench train: without CUDA, one line and exit code 1."""

from __future__ import annotations

import pytest
import torch

from benchmarks.cli import main


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the benchmark would run for minutes")
def test_train_without_cuda_is_one_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--audio", str(tmp_path)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == "codec-bench: error: codec-bench train needs a CUDA GPU; none is available here"
