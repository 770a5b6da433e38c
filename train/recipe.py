"""Loss recipes: which terms a run optimises and with what weights."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class LossWeights:
    """Weight of each generator loss term; adversarial terms start at `adversarial_start`."""

    waveform_l1: float = 1.0
    mel: float = 0.0
    commitment: float = 0.25
    adversarial: float = 0.0
    feature_matching: float = 0.0
    adversarial_start: int = 0

    @property
    def uses_gan(self) -> bool:
        return self.adversarial > 0 or self.feature_matching > 0


RECIPES: dict[str, LossWeights] = {
    # The plain recipe: waveform L1 and the VQ losses only.
    "l1": LossWeights(),
    # Adds a correct multi-scale log-mel loss (a real mel filterbank) to L1. L1 is weighted 10: with
    # weight 1 the mel term dominates and SNR stays low (H100 ablation, `small`, ~4,700 steps: SNR
    # +3.4 dB at L1 weight 1 against +7.6 dB at 10, for the same mel distance, 0.22). The default.
    "l1+mel": LossWeights(waveform_l1=10.0, mel=1.0),
    # DAC's recipe (mel-heavy + multi-period/STFT GAN with feature matching), after a reconstruction warm-up;
    # a waveform L1 term stays in to keep the level and the SNR the user watches.
    "full": LossWeights(
        waveform_l1=1.0, mel=15.0, adversarial=1.0, feature_matching=2.0, adversarial_start=2_000
    ),
}


def recipe(name: str, **overrides: float | None) -> LossWeights:
    """The named recipe with any non-None `overrides` (LossWeights field names) applied."""
    try:
        weights = RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown loss recipe {name!r}; choose one of {', '.join(RECIPES)}") from None
    return replace(weights, **{k: v for k, v in overrides.items() if v is not None})
