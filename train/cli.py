"""`codec-train`: train a codec on folders of speech (underscore flags, as users' existing scripts spell them)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import click

from sscodec.codec.checkpoint import CheckpointError
from sscodec.codec.config import PRESETS
from sscodec.common.audio import AudioFileError
from sscodec.common.cli import (
    EMPTY_PATH,
    MAX_THREADS,
    FiniteFloatRange,
    NonEmptyPath,
    command_settings,
    given_flags,
    int_list,
    run_cli,
)
from sscodec.common.errors import ModelError
from sscodec.common.text import plural
from sscodec.train.config import SELECT_BY, TrainConfig, absolute_paths, parse_data_dir, resumed
from sscodec.train.manifest import DataError, check_data_folder, overlapping_pair
from sscodec.train.recipe import OVERRIDABLE, RECIPES, recipe

DEFAULTS = TrainConfig(data_dirs=(), checkpoint_dir="")
# Found from outside, each a crash or the OS killing the run: seeds from about 9e12 overflowed the generators'
# int64 seeds (seed × 1,000,003 + ...); a crop of 1e9 s was read as "every file cannot be decoded"; 100,000 crops
# of 1 s filled 20 GB before the first step. The bounds are far past any real run (DAC trains on 0.38 s crops,
# EnCodec on 1 s; the bundled model's batches were 32 × 1 s).
MAX_SEED = 2**32 - 1
MAX_SEGMENT_S = 60.0
MAX_STEP_AUDIO_S = 3600


def _check_data_dirs(ctx: click.Context, param: click.Parameter, specs: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse a missing folder, a DIR:WEIGHT whose weight is not a number above 0, weights on some folders but not
    all, and overlapping folders, before anything starts."""
    folders, weighted = [], []
    for spec in specs:
        if not spec:  # Path("") is the current folder
            raise click.BadParameter(EMPTY_PATH, ctx=ctx, param=param)
        try:
            folder, weight = parse_data_dir(spec)
            check_data_folder(folder)
        except (ValueError, DataError) as error:
            raise click.BadParameter(str(error), ctx=ctx, param=param) from None
        folders.append(folder)
        weighted.append(weight is not None)
    if any(weighted) and not all(weighted):  # a weight is a share against the others' weights, not their hours
        raise click.BadParameter("give every folder a weight (DIR:WEIGHT) or none", ctx=ctx, param=param)
    # Each folder holds out its own validation files: a folder given twice, or inside another, would train on
    # what the other holds out (and count its audio twice).
    pair = overlapping_pair(folders)
    if pair is not None:
        raise click.BadParameter(
            f"{specs[pair[0]]} and {specs[pair[1]]} overlap (the same folder, or one inside the other): give each "
            "folder once, with the share you want as DIR:WEIGHT", ctx=ctx, param=param)
    return specs


def _codebook_counts(text: str) -> tuple[int, ...]:
    """--val_codebooks' counts, each at least 1 (the model, built later, bounds them from above)."""
    counts = int_list(text, "--val_codebooks") if text else ()
    if any(count < 1 for count in counts):
        raise click.BadParameter(f"{text!r}: codebook counts start at 1", param_hint="--val_codebooks")
    return tuple(sorted(set(counts)))  # a count given twice would weigh twice in best.pt's mean


@click.command(context_settings=command_settings("_", max_content_width=110))
@click.option("--data_dir", "data_dirs", multiple=True, callback=_check_data_dirs,
              help="Folder of wav/flac/ogg/mp3 (recursive) or with a metadata.jsonl; repeat to mix corpora, "
                   "by duration, or by weight with DIR:WEIGHT on every folder (each folder's share of the crops "
                   "is its weight over their sum). Required, but with --resume (the run's folders).")
@click.option("--checkpoint_dir", required=True, type=NonEmptyPath(file_okay=False),
              help="Where latest.pt, best.pt, metrics.jsonl and TensorBoard logs go.")
@click.option("--val_dir", type=click.Path(exists=True, file_okay=False),
              help="Validation clips [default: a seeded 2% of each data folder's files, held out from training].")
@click.option("--exclude", type=click.Path(exists=True, dir_okay=False),
              help="A text file of audio files never to train on, one path per line (relative to the file's "
                   "folder; '#' starts a comment), e.g. a benchmark's held-out speakers from `codec-bench "
                   "heldout`.")
@click.option("--no_validation", is_flag=True, help="No validation at all (best.pt is then the latest model).")
@click.option("--num_workers", type=click.IntRange(0, MAX_THREADS),
              help="DataLoader workers per process reading crops from disk [default: cores per process - 1, "
                   "1 to 4; at most 4 per logical core]; 0 reads on the main thread.")
@click.option("--threads", type=click.IntRange(1, MAX_THREADS),
              help="torch threads per process [default on the CPU: cores per process minus data workers, at "
                   "least 1; on CUDA: torch's default; at most 4 per logical core].")
@click.option("--in_memory", is_flag=True,
              help="Decode every training file into RAM before step 0 instead of reading crops from disk "
                   "(small corpora only: 100 hours are 23 GB per process).")
@click.option("--gain_prob", type=FiniteFloatRange(0, 1), default=0.0, show_default=True,
              help="Augmentation: share of crops given a random gain of -40..+6 dB.")
@click.option("--lowpass_prob", type=FiniteFloatRange(0, 1), default=0.0, show_default=True,
              help="Augmentation: share of crops band-limited at 3.4-8 kHz (half of them by resampling down and up).")
@click.option("--noise_prob", type=FiniteFloatRange(0, 1), default=0.0, show_default=True,
              help="Augmentation: share of crops mixed with a random crop of --noise_dir at 10-30 dB SNR.")
@click.option("--noise_dir", type=click.Path(exists=True, file_okay=False),
              help="Folder of noise recordings for --noise_prob.")
@click.option("--quiet_prob", type=FiniteFloatRange(0, 1), default=0.0, show_default=True,
              help="Augmentation: share of crops replaced by a pause: digital silence or white/pink/brown noise "
                   "at -80..-40 dBFS.")
@click.option("--preset", type=click.Choice(list(PRESETS)),
              help="The new model's size [default: small; with --init_from or --resume: that model's].")
@click.option("--init_from", help="Start from this checkpoint's weights (not its optimiser state); "
                                   "'default' is the bundled model.")
@click.option("--checkerboard_free", is_flag=True,
              help="Constrain the decoder's upsampling so pauses decode without a frame-rate buzz or a "
                   "sample_rate/4 line (codec/conv.py EqualPhaseSums); with --init_from, projects its weights.")
@click.option("--fold_free", is_flag=True,
              help="Constrain the decoder's phase fold alone (its last layer) so no output has a line at "
                   "sample_rate/phases; the frame-rate upsampling stays free. With --init_from, projects its weights.")
@click.option("--decoder_only", is_flag=True,
              help="Train the decoder alone on --init_from's codes: its encoder and codebooks stay as they are, so "
                   "the codes of any audio, and the entropy tables and context model built from them, do not "
                   "change (the fingerprint does: the weights are new).")
@click.option("--batch_size", type=click.IntRange(1), default=DEFAULTS.batch_size, show_default=True)
@click.option("--segment_seconds", type=FiniteFloatRange(0.04, MAX_SEGMENT_S), default=DEFAULTS.segment_seconds,
              show_default=True, help="Length of each random training crop.")
@click.option("--num_epochs", type=click.IntRange(1), default=DEFAULTS.num_epochs, show_default=True,
              help="An epoch is as many crops as the training audio lasts.")
@click.option("--max_steps", type=click.IntRange(1), help="Stop after this many steps (overrides epochs).")
@click.option("--max_minutes", type=FiniteFloatRange(0, min_open=True), help="Stop after this much training time.")
@click.option("--learning_rate", type=FiniteFloatRange(0, 1, min_open=True), default=DEFAULTS.learning_rate,
              show_default=True)
@click.option("--lr_decay", type=FiniteFloatRange(0, 1, min_open=True), default=DEFAULTS.lr_decay, show_default=True,
              help="Multiply the learning rate by this every step (DAC's exponential decay); to anneal a "
                   "continued run, e.g. 0.9995 divides it by 10 in 4,600 steps.")
@click.option("--losses", type=click.Choice(list(RECIPES)), default=DEFAULTS.losses, show_default=True,
              help="l1: waveform L1 + VQ (the plain recipe); l1+mel: adds multi-scale log-mel; "
                   "full: mel-heavy + GAN (DAC style).")
@click.option("--adversarial_start", type=click.IntRange(0),
              help="Step at which adversarial terms start (full only).")
@click.option("--discriminator_warmup", type=click.IntRange(0),
              help="Train the discriminators alone for this many steps before --adversarial_start, so the "
                   "generator's first adversarial gradients come from trained critics (full only) [default: 0].")
@click.option("--l1_weight", type=FiniteFloatRange(0), help="Override the recipe's waveform L1 weight.")
@click.option("--mel_weight", type=FiniteFloatRange(0), help="Override the recipe's multi-scale mel weight.")
@click.option("--stft_weight", type=FiniteFloatRange(0),
              help="Add the multi-resolution linear-frequency STFT loss (spectral convergence + log magnitude, "
                   "Parallel WaveGAN; windows 256-2048 samples) with this weight [default: 0, off in every recipe].")
@click.option("--adversarial_weight", type=FiniteFloatRange(0), help="Override the adversarial weight.")
@click.option("--feature_weight", type=FiniteFloatRange(0), help="Override the feature-matching weight.")
@click.option("--checkerboard_weight", type=FiniteFloatRange(0),
              help="Pull the decoder's upsampling towards checkerboard-free kernels with this weight on their "
                   "relative distance from them (codec/blocks.py phase_sum_deviation), so that a later "
                   "--checkerboard_free projection moves the model little [default: 0, no pull].")
@click.option("--eval_every", type=click.IntRange(1), default=DEFAULTS.eval_every, show_default=True,
              help="Validate and save checkpoints every N steps.")
@click.option("--val_clips", type=click.IntRange(1), help="Use only the first N validation clips.")
@click.option("--val_codebooks", default="", callback=lambda ctx, param, text: _codebook_counts(text),
              help="Also validate with only the first N codebooks (a list, e.g. 6 for 3 kbps of a 12-codebook "
                   "model); best.pt is then the best model by --select_by's mean over all codebooks and these "
                   "counts, not over all codebooks alone.")
@click.option("--select_by", type=click.Choice(list(SELECT_BY)), default=DEFAULTS.select_by, show_default=True,
              help="What best.pt is chosen by: the lowest mel distance, or the highest PESQ-WB (ITU-T P.862.2, "
                   "what a listener hears more nearly; about 1 s per minute of validation audio and codebook "
                   "count on one core; needs the pesq package, installed with the bench extra).")
@click.option("--normalize_db", type=FiniteFloatRange(-80, 0),
              help="Scale each training crop to this RMS level (dBFS).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=DEFAULTS.device, show_default=True)
@click.option("--no_amp", is_flag=True, help="Train in fp32 on CUDA instead of bf16 autocast.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the generator and discriminators.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=DEFAULTS.seed, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from CHECKPOINT_DIR/latest.pt.")
@click.option("--use_wandb", is_flag=True, help="Also log to Weights & Biases.")
@click.option("--experiment_name", default=DEFAULTS.experiment_name, show_default=True)
def command(data_dirs, checkpoint_dir, no_amp, compile_, **options) -> None:
    """Train a streaming speech codec; run the same command under `torchrun --nproc_per_node N` for DDP."""
    from sscodec.train.distributed import init_distributed, shutdown
    from sscodec.train.trainer import Trainer, TrainingUsageError, resolve_device

    if not data_dirs and not options["resume"]:
        raise click.UsageError("Missing option '--data_dir'.")
    if options["noise_prob"] > 0 and not options["noise_dir"]:
        raise click.UsageError("--noise_prob needs --noise_dir (a folder of noise recordings)")
    if options["noise_dir"] and options["noise_prob"] == 0:
        raise click.UsageError("--noise_dir has no effect without --noise_prob")
    weights = recipe(options["losses"], **{name: options[name] for name in OVERRIDABLE})
    for flag in ("adversarial_start", "discriminator_warmup"):
        if options[flag] is not None and not weights.uses_gan:
            raise click.UsageError(f"--{flag} has no effect without a GAN (--losses {options['losses']} has "
                                   "none; --losses full has)")
    if weights.discriminator_warmup > weights.adversarial_start:
        raise click.UsageError(f"--discriminator_warmup {weights.discriminator_warmup} is longer than the "
                               f"{weights.adversarial_start} steps before the adversarial terms start: raise "
                               "--adversarial_start to at least the warm-up")
    if options["fold_free"] and options["checkerboard_free"]:
        raise click.UsageError("--checkerboard_free implies --fold_free: give one of them")
    if options["no_validation"] and options["val_codebooks"]:
        raise click.UsageError("--val_codebooks has no effect with --no_validation")
    if options["no_validation"] and options["select_by"] != DEFAULTS.select_by:
        raise click.UsageError("--select_by has no effect with --no_validation")
    if options["no_validation"] and options["val_dir"]:
        raise click.UsageError("--no_validation and --val_dir contradict each other; give one")
    step_audio = options["batch_size"] * options["segment_seconds"]
    if step_audio > MAX_STEP_AUDIO_S:  # found from outside: --batch_size 100000 ran out of memory, killed by the OS
        raise click.UsageError(f"--batch_size {options['batch_size']} × --segment_seconds "
                               f"{options['segment_seconds']:g} is {step_audio:,.0f} s of audio per step, more "
                               f"than the {MAX_STEP_AUDIO_S:,} s a step may hold: lower one of them")
    config = absolute_paths(TrainConfig(
        data_dirs=tuple(data_dirs), checkpoint_dir=checkpoint_dir, amp=not no_amp, compile=compile_, **options
    ))
    if config.resume:
        config = _resumed(config)
    info = init_distributed(resolve_device(config.device).type)
    logging.basicConfig(
        level=logging.INFO if info.is_main else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S",
    )
    try:
        result = Trainer(config, info).run()
    except TrainingUsageError as error:
        raise click.UsageError(str(error)) from None
    finally:
        shutdown(info)
    if info.is_main:
        validation = (
            f"best validation {SELECT_BY[result.select_by]} {result.best_selection:.4f}"
            + (f" (mean over all codebooks and {', '.join(map(str, config.val_codebooks))})"
               if config.val_codebooks else "")
            if math.isfinite(result.best_selection)
            else "no validation (best.pt is the latest model)" if result.last is None  # --no_validation, no clips
            else f"validation never gave a finite {SELECT_BY[result.select_by]} (best.pt is the latest model)"
        )
        click.echo(
            f"done: {result.steps} {plural(result.steps, 'step')}, {validation}, "
            f"{result.nan_skipped_steps} non-finite {plural(result.nan_skipped_steps, 'step')} skipped; checkpoints "
            f"in {result.checkpoint_dir} "
            f"(next: codec-export --onnx --checkpoint {result.checkpoint_dir / 'best.pt'} --out DIR; curves: "
            f"tensorboard --logdir {result.checkpoint_dir / 'tensorboard'})"
        )


def _resumed(config: TrainConfig) -> TrainConfig:
    """The run's own settings for what this command line leaves out; a usage error for what contradicts them."""
    from sscodec.codec.checkpoint import read_checkpoint

    latest = Path(config.checkpoint_dir) / "latest.pt"
    if not latest.is_file():
        return config  # the trainer says there is nothing to resume
    ctx = click.get_current_context()
    flags = given_flags(ctx)
    given = {{"compile_": "compile", "no_amp": "amp"}.get(param.name, param.name) for param in ctx.command.params
             if param.opts[0] in flags}
    saved = read_checkpoint(latest).get("train_config") or {}
    try:
        return resumed(config, saved, given)
    except ValueError as error:
        raise click.UsageError(str(error)) from None


def main(args: list[str] | None = None) -> None:
    from sscodec.train.trainer import TrainingError

    run_cli(command, "codec-train", (DataError, CheckpointError, TrainingError, AudioFileError, ModelError), args)
