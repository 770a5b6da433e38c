"""GAN discriminators: output structure, gradients, sizing, and the adversarial losses on their outputs."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.nn.utils import parametrize

from sscodec.codec.config import preset
from sscodec.train.discriminators import (
    Discriminator,
    DiscriminatorOutput,
    MultiPeriodDiscriminator,
    MultiResolutionSTFTDiscriminator,
    STFTDiscriminator,
)
from sscodec.train.losses import discriminator_loss, feature_matching_loss, generator_adversarial_loss

PERIODS = (2, 3, 5, 7, 11)
WINDOWS = (256, 512, 1024)


@pytest.fixture(scope="module")
def discriminator() -> Discriminator:
    torch.manual_seed(0)
    return Discriminator.for_preset("tiny")


def audio(batch: int = 2, length: int = 2049, seed: int = 0) -> torch.Tensor:
    return 0.1 * torch.randn(batch, length, generator=torch.Generator().manual_seed(seed))


def test_one_output_per_sub_discriminator_with_features(discriminator: Discriminator) -> None:
    # 2049 samples: a length no period divides, so the folding pads.
    outputs = discriminator(audio())
    assert len(outputs) == len(PERIODS) + len(WINDOWS)
    for output in outputs:
        assert isinstance(output, DiscriminatorOutput)
        assert output.logits.dim() == 4 and output.logits.shape[:2] == (2, 1) and output.logits.numel() > 2
        assert len(output.features) == 4
        assert all(f.shape[0] == 2 and torch.isfinite(f).all() for f in output.features)
        assert torch.isfinite(output.logits).all()


def test_sub_discriminators_keep_their_own_order() -> None:
    torch.manual_seed(0)
    model = Discriminator(width=2)
    x = audio()
    outputs = model(x)
    period_outputs, stft_outputs = model.period(x), model.stft(x)
    for got, expected in zip(outputs, period_outputs + stft_outputs, strict=True):
        assert torch.equal(got.logits, expected.logits)
    # Period p folds the waveform into rows of p samples: the logits' last axis is the period.
    assert [o.logits.shape[-1] for o in period_outputs] == list(PERIODS)


def test_gradients_reach_the_input_and_every_weight(discriminator: Discriminator) -> None:
    x = audio().requires_grad_(True)
    discriminator.zero_grad(set_to_none=True)
    generator_adversarial_loss(discriminator(x)).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, parameter in discriminator.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_every_conv_is_weight_normed(discriminator: Discriminator) -> None:
    convs = [m for m in discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == len(PERIODS) * 5 + len(WINDOWS) * (5 * 4 + 1)
    assert all(parametrize.is_parametrized(conv, "weight") for conv in convs)


def test_items_in_a_batch_do_not_influence_each_other(discriminator: Discriminator) -> None:
    x = audio(batch=3)
    together = discriminator(x)
    alone = discriminator(x[1:2])
    for batched, single in zip(together, alone, strict=True):
        torch.testing.assert_close(batched.logits[1:2], single.logits, atol=1e-5, rtol=1e-4)


def test_the_discriminators_see_the_level(discriminator: Discriminator) -> None:
    # No per-clip peak normalisation, so a quiet output can be told from a loud one.
    x = audio()
    loud, quiet = discriminator(x), discriminator(0.3 * x)
    assert any(not torch.allclose(a.logits, b.logits, atol=1e-4) for a, b in zip(loud, quiet, strict=True))


def test_feature_matching_is_zero_for_identical_inputs_and_positive_otherwise(
    discriminator: Discriminator,
) -> None:
    x = audio()
    with torch.no_grad():
        real, same, other = discriminator(x), discriminator(x.clone()), discriminator(audio(seed=1))
    assert feature_matching_loss(real, same).item() == 0.0
    assert feature_matching_loss(real, other).item() > 0


def test_a_gan_step_moves_the_losses_the_right_way() -> None:
    # One discriminator step on real vs fake lowers its LSGAN loss on that pair.
    torch.manual_seed(0)
    model = Discriminator(width=4)
    real, fake = audio(seed=2), audio(seed=3) * 0.5
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = discriminator_loss(model(real), model(fake))
    for _ in range(3):
        optimizer.zero_grad()
        discriminator_loss(model(real), model(fake)).backward()
        optimizer.step()
    with torch.no_grad():
        after = discriminator_loss(model(real), model(fake))
    assert after < before


def test_preset_sizes_grow_and_unknown_presets_are_refused() -> None:
    counts = [
        sum(p.numel() for p in Discriminator.for_preset(n).parameters()) for n in ("tiny", "small", "base")
    ]
    assert counts[0] < counts[1] < counts[2]
    assert counts[1] < 1_000_000, "the small discriminator must stay cheap enough for 2-core CPU training"
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        Discriminator.for_preset("huge")


def test_a_custom_codec_gets_the_discriminator_of_the_preset_nearest_in_width() -> None:
    def width(model: Discriminator) -> int:
        return sum(p.numel() for p in model.parameters())

    wide = dataclasses.replace(preset("base"), channels=60, preset="custom")
    narrow = dataclasses.replace(preset("tiny"), channels=12, preset="custom")
    assert width(Discriminator.for_codec(wide)) == width(Discriminator.for_preset("base"))
    assert width(Discriminator.for_codec(narrow)) == width(Discriminator.for_preset("tiny"))
    assert width(Discriminator.for_codec(preset("small"))) == width(Discriminator.for_preset("small"))


def test_parts_work_alone_and_bands_can_be_turned_off() -> None:
    x = audio()
    assert len(MultiPeriodDiscriminator(periods=(2, 3), channels=(4, 4))(x)) == 2
    single_band = MultiResolutionSTFTDiscriminator(window_sizes=(256,), channels=4, bands=((0.0, 1.0),))
    (output,) = single_band(x)
    assert len(output.features) == 4


def test_a_band_too_narrow_for_the_strides_is_refused() -> None:
    with pytest.raises(ValueError, match="fewer than 8 bins"):
        STFTDiscriminator(64, 4, bands=((0.0, 0.1), (0.1, 1.0)))


def test_audio_must_be_batch_by_samples(discriminator: Discriminator) -> None:
    with pytest.raises(ValueError, match="batch, samples"):
        discriminator(torch.zeros(1, 1, 4000))


def test_the_discriminators_warm_up_alone_before_the_adversarial_terms(tmp_path) -> None:
    # --discriminator_warmup 2 --adversarial_start 3: step 0 trains the generator alone, steps 1-2 also the
    # discriminators (the generator's loss still without adversarial terms), step 3 on both.
    from sscodec.train.config import TrainConfig
    from sscodec.train.trainer import Trainer
    from tests.conftest import telugu_train_clips

    data = telugu_train_clips(tmp_path / "data", 4)
    trainer = Trainer(TrainConfig(
        data_dirs=(str(data),), checkpoint_dir=str(tmp_path / "c"), preset="tiny", device="cpu", num_workers=0,
        no_validation=True, batch_size=2, segment_seconds=0.2, losses="full", adversarial_start=3,
        discriminator_warmup=2,
    ))
    critic = trainer.discriminator
    seen = []
    for _ in range(4):
        before = [p.detach().clone() for p in critic.parameters()]
        terms = trainer.advance()
        moved = any(not torch.equal(a, p) for a, p in zip(before, critic.parameters(), strict=True))
        seen.append((moved, "disc" in terms, "adv" in terms and "feat" in terms))
        if "adv" not in terms:  # the generator's loss is the reconstruction recipe's alone
            w = trainer.weights
            expected = w.l1_weight * terms["recon"] + w.mel_weight * terms["mel"] + terms["vq"]
            assert terms["loss"] == pytest.approx(expected, rel=1e-5)
    assert seen == [(False, False, False), (True, True, False), (True, True, False), (True, True, True)]
