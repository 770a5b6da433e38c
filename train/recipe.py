"""Loss recipes: which terms a run optimises and with what weights."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

Value = TypeVar("Value")  # a loss term: a tensor in training, a float in validation

# The weights codec-train's flags override; each flag's name is the field's (--l1_weight → l1_weight).
OVERRIDABLE = (
    "l1_weight", "mel_weight", "stft_weight", "adversarial_weight", "feature_weight", "adversarial_start", "discriminator_warmup",
    "checkerboard_weight",
)


@dataclass(frozen=True)
class LossWeights:
    """Weight of each generator loss term; adversarial terms start at `adversarial_start`, and the discriminators
    learn from `discriminator_start` on."""

    l1_weight: float = 1.0
    mel_weight: float = 0.0
    # The linear-frequency multi-resolution STFT loss (train/losses.py MultiResolutionSTFTLoss): off in every
    # recipe until a measured run shows it helps; `--stft_weight` adds it to any of them.
    stft_weight: float = 0.0
    commitment: float = 0.25
    adversarial_weight: float = 0.0
    feature_weight: float = 0.0
    adversarial_start: int = 0
    # Steps before `adversarial_start` in which the discriminators learn alone: the generator's first adversarial
    # gradients then come from critics that already tell real from decoded speech, not from random ones (which,
    # on a trained generator, pushed the mel distance up at once: README, `quality-gan`).
    discriminator_warmup: int = 0
    checkerboard_weight: float = 0.0  # on Decoder.phase_sum_deviation: a pull towards checkerboard-free kernels

    @property
    def discriminator_start(self) -> int:
        """The first step at which the discriminators take an optimisation step."""
        return max(0, self.adversarial_start - self.discriminator_warmup)

    @property
    def uses_gan(self) -> bool:
        return self.adversarial_weight > 0 or self.feature_weight > 0

    def total(self, terms: Mapping[str, Value]) -> Value:
        """The generator loss from its terms: `recon` (waveform L1), `vq` (already weighted by `commitment`),
        and where present `mel`, `stft`, `checkerboard`, `adv` and `feat`, each times its weight."""
        loss = self.l1_weight * terms["recon"] + terms["vq"]
        loss = loss + self.mel_weight * terms.get("mel", 0.0) + self.checkerboard_weight * terms.get("checkerboard", 0.0)
        loss = loss + self.stft_weight * terms.get("stft", 0.0)
        if "adv" in terms:
            loss = loss + self.adversarial_weight * terms["adv"] + self.feature_weight * terms["feat"]
        return loss


RECIPES: dict[str, LossWeights] = {
    # The plain recipe: waveform L1 and the VQ losses only.
    "l1": LossWeights(),
    # Adds a correct multi-scale log-mel loss (a real mel filterbank) to L1. L1 is weighted 10: with
    # weight 1 the mel term dominates and SNR stays low (H100 ablation, `small`, ~4,700 steps: SNR
    # +3.4 dB at L1 weight 1 against +7.6 dB at 10, for the same mel distance, 0.22). The default.
    "l1+mel": LossWeights(l1_weight=10.0, mel_weight=1.0),
    # DAC's recipe (mel-heavy + multi-period/STFT GAN with feature matching), after a reconstruction warm-up;
    # a waveform L1 term stays in to keep the level and the SNR the user watches.
    "full": LossWeights(
        l1_weight=1.0, mel_weight=15.0, adversarial_weight=1.0, feature_weight=2.0, adversarial_start=2_000
    ),
}


def recipe(name: str, **overrides: float | None) -> LossWeights:
    """The named recipe with any non-None `overrides` (LossWeights field names) applied."""
    try:
        weights = RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown loss recipe {name!r}; choose one of {', '.join(RECIPES)}") from None
    return replace(weights, **{k: v for k, v in overrides.items() if v is not None})
