"""Run under `torchrun`: train a few steps with Trainer, then dump this rank's state (and the files its batches
came from) to DIR/rank{R}.pt.

The `full` recipe with the GAN on from step 0, and on rank 1 only a NaN generator loss at step 1 and a NaN
discriminator loss at step 2: the ranks must agree to skip both, or the others would hang in all-reduce.
"""

from __future__ import annotations

import sys

import torch

import sscodec.train.trainer
from sscodec.train.config import TrainConfig
from sscodec.train.data import data_summary
from sscodec.train.distributed import init_distributed, shutdown
from sscodec.train.trainer import Trainer


def poison_on_rank_1(name: str, trainer: Trainer, step: int) -> None:
    """Make `sscodec.train.trainer.<name>` return NaN on rank 1 when the trainer is at `step`."""
    original = getattr(sscodec.train.trainer, name)

    def poisoned(*args, **kwargs):
        value = original(*args, **kwargs)
        return value * float("nan") if trainer.dist.rank == 1 and trainer.step == step else value

    setattr(sscodec.train.trainer, name, poisoned)


def main(data_dir: str, checkpoint_dir: str, steps: int) -> None:
    config = TrainConfig(
        data_dirs=(data_dir,), checkpoint_dir=checkpoint_dir, preset="tiny", batch_size=2,
        segment_seconds=0.2, max_steps=steps, eval_every=steps, device="cpu", losses="full", adversarial_start=0,
    )
    info = init_distributed("cpu")
    try:
        trainer = Trainer(config, info)
        poison_on_rank_1("l1_waveform_loss", trainer, step=1)
        poison_on_rank_1("discriminator_loss", trainer, step=2)
        trainer.run()
        state = {f"model.{k}": v.detach().clone() for k, v in trainer.model.state_dict().items()}
        state |= {f"discriminator.{k}": v.detach().clone() for k, v in trainer.discriminator.state_dict().items()}
        state["nan_skipped"] = torch.tensor(trainer.nan_skipped)
        # AdamW counts the steps it took: one per optimiser step that was not skipped.
        for name, optimizer in (("generator_steps", trainer.optimizer_g), ("discriminator_steps", trainer.optimizer_d)):
            state[name] = next(iter(optimizer.state.values()))["step"].clone()
        # The files this rank's batches were cropped from, to show that ranks read disjoint data.
        crops = [crop for step in range(steps) for crop in trainer.dataset.plan.crops(step, config.batch_size)]
        state["files"] = sorted({crop.entry.path.name for crop in crops})
        state["summary"] = data_summary(trainer.dataset.plan.corpora)  # what the run logs about its data
        torch.save(state, f"{checkpoint_dir}/rank{info.rank}.pt")
    finally:
        shutdown(info)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
