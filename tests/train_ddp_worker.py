"""Run under `torchrun`: train a few steps with Trainer, then dump this rank's model state to DIR/rank{R}.pt."""

from __future__ import annotations

import sys

import torch

from train.config import TrainConfig
from train.distributed import init_distributed, shutdown
from train.trainer import Trainer


def main(data_dir: str, checkpoint_dir: str, steps: int) -> None:
    config = TrainConfig(
        data_dirs=(data_dir,), checkpoint_dir=checkpoint_dir, preset="tiny", batch_size=2,
        segment_seconds=0.2, max_steps=steps, eval_every=steps, device="cpu", losses="l1+mel",
    )
    info = init_distributed("cpu")
    try:
        trainer = Trainer(config, info)
        trainer.run()
        state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        torch.save(state, f"{checkpoint_dir}/rank{info.rank}.pt")
    finally:
        shutdown(info)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
