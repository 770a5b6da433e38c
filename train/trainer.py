"""The training loop: generator (+ optional discriminators), validation, atomic checkpoints, resume."""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout
from torch import Tensor
from torch.nn.utils import parametrize

from sscodec.codec.checkpoint import (
    CheckpointError,
    atomic_save,
    codec_payload,
    load_codec,
    read_checkpoint,
    saved_config,
)
from sscodec.codec.config import CodecConfig, preset
from sscodec.codec.fingerprint import codec_fingerprint
from sscodec.codec.model import Codec
from sscodec.common.bundled import resolve_checkpoint
from sscodec.common.cli import interrupts_deferred
from sscodec.common.text import plural
from sscodec.train.augment import Augmentation
from sscodec.train.config import SELECT_BY, TrainConfig, parse_data_dir
from sscodec.train.data import (
    VAL_MAX_SECONDS,
    VAL_MIN_FILES,
    VAL_SHARE,
    Corpus,
    CropDataset,
    CropPlan,
    CropReader,
    NoisePool,
    batches,
    data_summary,
    default_cpu_threads,
    default_workers,
    exclude_list_warning,
    held_out_clips,
    hold_out,
    load_validation,
    rank_share,
    read_file_list,
)
from sscodec.train.discriminators import Discriminator, DiscriminatorOutput
from sscodec.train.distributed import DistInfo, sync_buffers, wrap
from sscodec.train.losses import (
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    l1_waveform_loss,
)
from sscodec.train.manifest import DataError, Manifest, load_manifest, overlapping_pair
from sscodec.train.metrics import amplitude_ratio, codebook_usage, si_sdr_db, silent, snr_db
from sscodec.train.monitor import Monitor, Validation, better, validated_steps
from sscodec.train.perceptual import PESQ_PACKAGE_HINT, pesq_available, pesq_wb
from sscodec.train.recipe import OVERRIDABLE, LossWeights, recipe

log = logging.getLogger("codec-train")
DEFAULT_PRESET = "small"  # a new model's size when --preset is not given
CLAIM = ".codec-train.lock"  # locked by the run using the folder (filelock: flock on Linux and macOS)
VALIDATION_LISTING = "validation_files.txt"  # the files a run holds out, one path per line


class TrainingError(RuntimeError):
    """A run that cannot go on (diverged, nothing to resume, ...): reported as one line."""


class TrainingUsageError(TrainingError):
    """A command line that contradicts what it points at (a folder holding a run, the --init_from model's
    preset): found only once those are read, a usage error all the same (exit 2)."""


@dataclass
class TrainResult:
    """Where a finished run ended."""

    steps: int
    best_selection: float  # best.pt's Validation.selection (NaN: none ran or none scored; best.pt is the latest)
    select_by: str  # what that is (monitor.SELECT_BY)
    last: Validation | None
    nan_skipped_steps: int
    checkpoint_dir: Path


def resolve_device(name: str) -> torch.device:
    """`auto` → CUDA where a GPU is visible, else the CPU; TrainingError when CUDA is asked for and absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda: no CUDA device is available (use --device cpu)")
    return torch.device(name)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _finite_mean(values: list[float]) -> float:
    """The mean of the finite `values` (PESQ is NaN for a clip it cannot score); NaN if there are none."""
    finite = [value for value in values if math.isfinite(value)]
    return _mean(finite) if finite else math.nan


def _split(outputs: list[DiscriminatorOutput], n_real: int) -> tuple[list, list]:
    """Split outputs of a discriminator run on cat([real, fake]) into the real and fake halves."""
    real = [DiscriminatorOutput(o.logits[:n_real], [f[:n_real] for f in o.features]) for o in outputs]
    fake = [DiscriminatorOutput(o.logits[n_real:], [f[n_real:] for f in o.features]) for o in outputs]
    return real, fake


class Trainer:
    """Trains a codec as `TrainConfig` says; `run()` returns a `TrainResult`."""

    def __init__(self, config: TrainConfig, dist: DistInfo | None = None) -> None:
        if config.select_by not in SELECT_BY:
            raise ValueError(f"select_by must be one of {', '.join(SELECT_BY)}, got {config.select_by!r}")
        if config.select_by == "pesq" and not pesq_available():
            raise TrainingUsageError(f"--select_by pesq needs the pesq package ({PESQ_PACKAGE_HINT})")
        self.config = config
        self.dist = dist = dist or DistInfo()
        self.device = self._setup_device()
        self.weights: LossWeights = recipe(config.losses, **{name: getattr(config, name) for name in OVERRIDABLE})
        self.dir, created = self._setup_directory()
        try:
            self._set_up()
        except BaseException:
            self.release_directory()
            if created and dist.is_main:  # a run that never started leaves no folder behind
                shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def _set_up(self) -> None:
        """Everything after the checkpoint folder: model, optimisers, a resumed state, data, logging."""
        config, dist = self.config, self.dist
        resume_payload = self._resume_payload()
        if resume_payload is not None:
            # The run began from these weights, whatever this invocation says: its checkpoints and curves
            # (`codec-bench curve`) keep the provenance.
            saved = resume_payload.get("train_config") or {}
            self.config = config = dataclasses.replace(config, init_from=saved.get("init_from"),
                                                       init_fingerprint=saved.get("init_fingerprint"))
        torch.manual_seed(config.seed + dist.rank)
        random.seed(config.seed + dist.rank)
        self.model = self._build_model(resume_payload).to(self.device)
        self.codec_config: CodecConfig = self.model.config
        if not all(count < self.codec_config.n_codebooks for count in config.val_codebooks):
            raise TrainingUsageError(f"--val_codebooks: this model has {self.codec_config.n_codebooks} codebooks, and "
                                f"validation always uses all of them: give counts below {self.codec_config.n_codebooks}")
        if config.decoder_only:
            self._freeze_codes()
        self.discriminator = self._build_discriminator() if self.weights.uses_gan else None
        self.mel = MultiScaleMelLoss(self.codec_config.sample_rate).to(self.device)
        self.stft = MultiResolutionSTFTLoss().to(self.device) if self.weights.stft_weight else None
        self._check_crop_length()
        self._build_optimisers()
        self.step = 0
        self.best_selection = math.nan  # none yet: any finite selection is better
        self.nan_skipped = 0
        self.consecutive_nan = 0
        self.train_seconds = 0.0
        # Summed step by step, and saved: a run resumed on another number of processes trains another amount of
        # audio per step (found from outside: recomputed as step × today's processes, the curve went backwards).
        self.audio_seconds_trained = 0.0
        # Counted on from the resumed step: resumed with recordings added, an epoch is longer from then on, and the
        # count must not drop (found from outside: 0.645, then 0.071).
        self._epochs_before = 0.0
        if resume_payload is not None:
            self._restore(resume_payload)
        # Throughput counts the steps and seconds of this process only, from where it started.
        self._start_step, self._loop_seconds = self.step, 0.0
        self._wrap_for_training()
        self._load_data(resumed=resume_payload is not None)
        if math.isnan(self.audio_seconds_trained):  # a checkpoint from before it was saved: as many processes as now
            self.audio_seconds_trained = self.step * self.audio_seconds_per_step
        if math.isnan(self._epochs_before):  # a checkpoint from before it was saved: the data as it is now
            self._epochs_before = self.audio_seconds_trained / (self.steps_per_epoch * self.audio_seconds_per_step)
        self.monitor = (
            Monitor(self.dir, config.to_dict(), config.use_wandb, config.experiment_name) if dist.is_main else None
        )
        # A validation due at the resumed step that an interrupt came before (found from outside: lost for good,
        # and at the last step --resume then refused with "nothing to train"). Every process reads the same file,
        # so all of them take part in the save that follows it.
        self._validation_due = resume_payload is not None and bool(self.validation) and (
            self.step % config.eval_every == 0 or self.step >= self.total_steps) and (
            self.step not in validated_steps(self.dir))
        if resume_payload is not None and self.monitor is not None:
            self.monitor.drop_after(self.step)

    # -- set-up --------------------------------------------------------------------------------------
    def _setup_device(self) -> torch.device:
        device = resolve_device(self.config.device)
        if device.type == "cuda":
            torch.cuda.set_device(device.index or self.dist.local_rank)
            device = torch.device("cuda", torch.cuda.current_device())
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        return device

    def _setup_directory(self) -> tuple[Path, bool]:
        """The checkpoint folder, and whether this call created it."""
        directory = Path(self.config.checkpoint_dir)
        if not self.config.resume and (directory / "latest.pt").exists():
            raise TrainingUsageError(f"{directory} already holds a run (latest.pt): continue it with --resume, or give "
                                "a new --checkpoint_dir")
        created = not directory.exists()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise TrainingError(f"{directory}: cannot create checkpoint folder ({error.strerror})") from None
        # Held by the main process until the run ends (the operating system drops it if the process dies): found
        # from outside, two runs started on one folder a second apart both trained, each overwriting the other's
        # checkpoints, since nothing is in the folder to refuse until step 0's latest.pt is written.
        self._claim = FileLock(directory / CLAIM) if self.dist.is_main else None
        if self._claim is not None:
            try:
                self._claim.acquire(timeout=0)
            except Timeout:
                raise TrainingUsageError(f"{directory} is in use by another codec-train run: wait for it to end, or "
                                         "give another --checkpoint_dir") from None
            self._remove_stale_temp_files(directory)
        return directory, created

    def release_directory(self) -> None:
        """Let another run use the checkpoint folder (done when `run` ends)."""
        if self._claim is not None:
            self._claim.release()

    def _build_optimisers(self) -> None:
        config = self.config
        trained = [parameter for parameter in self.model.parameters() if parameter.requires_grad]
        self.optimizer_g = torch.optim.AdamW(trained, config.learning_rate, betas=(0.8, 0.99))
        self.scheduler_g = torch.optim.lr_scheduler.ExponentialLR(self.optimizer_g, config.lr_decay)
        if self.discriminator is not None:
            self.optimizer_d = torch.optim.AdamW(
                self.discriminator.parameters(), config.learning_rate, betas=(0.8, 0.99)
            )
            self.scheduler_d = torch.optim.lr_scheduler.ExponentialLR(self.optimizer_d, config.lr_decay)

    def _wrap_for_training(self) -> None:
        """DDP (when distributed) and torch.compile (when asked) around the generator and the critic."""
        self.generator = wrap(self.model, self.dist, self.device)
        self.critic = wrap(self.discriminator, self.dist, self.device) if self.discriminator is not None else None
        if self.config.compile:
            self.generator = torch.compile(self.generator)
            self.critic = torch.compile(self.critic) if self.critic is not None else None

    def _check_crop_length(self) -> None:
        """A crop shorter than the largest window of a spectral loss in use (the STFT discriminators' windows do
        not exceed the mel loss's) cannot be trained on: a usage error before step 0, not a traceback at it."""
        rate, segment = self.codec_config.sample_rate, int(self.config.segment_seconds * self.codec_config.sample_rate)
        needs = []
        if self.weights.mel_weight or self.weights.uses_gan:
            needs.append((self.mel.min_length, f"--losses {self.config.losses}"))
        if self.stft is not None:
            needs.append((self.stft.min_length, "--stft_weight"))
        for needed, what in needs:
            if segment < needed:
                raise TrainingUsageError(
                    f"--segment_seconds {self.config.segment_seconds:g}: {what} needs crops of at least {needed} "
                    f"samples ({math.ceil(needed / rate * 1000) / 1000:g} s at {rate} Hz)")

    def _freeze_codes(self) -> None:
        """`--decoder_only`: no gradient reaches the encoder; `_train_mode` keeps the codebooks' EMA still."""
        if not self.config.init_from:
            raise TrainingUsageError("--decoder_only trains a decoder on a trained model's codes: give --init_from")
        self.model.encoder.requires_grad_(False)
        self.model.quantizer.requires_grad_(False)
        log.info("decoder only: the encoder and the %d codebooks stay as in %s (the codes do not change)",
                 self.codec_config.n_codebooks, self.config.init_from)

    def _train_mode(self) -> None:
        """The model in training mode; with `--decoder_only` the encoder and each codebook stay in eval mode
        (no EMA update), while the residual quantizer still drops codebooks so the decoder learns every rate."""
        self.model.train()
        if self.config.decoder_only:
            self.model.encoder.eval()
            for codebook in self.model.quantizer.quantizers:
                codebook.eval()

    def _build_discriminator(self) -> Discriminator:
        return Discriminator.for_codec(self.codec_config).to(self.device)

    @staticmethod
    def _remove_stale_temp_files(directory: Path) -> None:
        """Delete half-written checkpoints that a killed run left (atomic_save's temp files, never loaded)."""
        for name in ("latest.pt", "best.pt"):
            for stale in directory.glob(f".{name}.*.tmp"):
                log.warning("removing %s, a checkpoint write that never finished", stale)
                stale.unlink(missing_ok=True)

    def _resume_payload(self) -> dict[str, Any] | None:
        if not self.config.resume:
            return None
        latest = self.dir / "latest.pt"
        if not latest.exists():
            raise TrainingUsageError(f"--resume: {latest} does not exist (nothing to resume; drop --resume)")
        payload = read_checkpoint(latest)
        if not {"step", "optimizer_g", "scheduler_g", "rng"} <= payload.keys():  # found from outside: a KeyError
            raise CheckpointError(f"--resume: {latest} holds a model without its training state (a best.pt or an "
                                  f"exported codec.pt copied there?): start a new run from it with --init_from")
        return payload

    def _build_model(self, resume_payload: dict[str, Any] | None) -> Codec:
        if resume_payload is not None:
            return Codec(saved_config(resume_payload, self.dir / "latest.pt"))  # a bad config: one line
        if self.config.init_from:
            model = load_codec(resolve_checkpoint(self.config.init_from))
            if not any(parametrize.is_parametrized(m) for m in model.modules()):
                raise CheckpointError(
                    f"{self.config.init_from}: weights are folded for inference; start from a training checkpoint"
                )
            if self.config.preset not in (None, model.config.preset):
                raise TrainingUsageError(f"--preset {self.config.preset} contradicts --init_from {self.config.init_from}, "
                                    f"a {model.config.preset} model: drop --preset")
            self.config = dataclasses.replace(self.config,
                                              init_fingerprint=codec_fingerprint(model.config, model.state_dict()))
            log.info("initialised from %s (preset %s, fingerprint %s)", self.config.init_from, model.config.preset,
                     self.config.init_fingerprint[:16])
            if self.config.checkerboard_free or self.config.fold_free:
                before = model.config
                model.make_checkerboard_free(fold_only=not self.config.checkerboard_free)  # no-op if already so
                if model.config != before:
                    log.info("decoder's %s projected onto checkerboard-free kernels",
                             "upsampling" if self.config.checkerboard_free else "phase fold")
            return model
        config = preset(self.config.preset or DEFAULT_PRESET)
        checkerboard_free = config.checkerboard_free or self.config.checkerboard_free
        return Codec(dataclasses.replace(config, checkerboard_free=checkerboard_free,
                                         fold_free=(config.fold_free or self.config.fold_free) and not checkerboard_free))

    def _restore(self, payload: dict[str, Any]) -> None:
        self.model.load_state_dict(payload["model"])
        self.optimizer_g.load_state_dict(payload["optimizer_g"])
        self.scheduler_g.load_state_dict(payload["scheduler_g"])
        if self.discriminator is not None:
            if "discriminator" not in payload:
                raise TrainingError("--resume: the checkpoint has no discriminator; resume with its --losses")
            self.discriminator.load_state_dict(payload["discriminator"])
            self.optimizer_d.load_state_dict(payload["optimizer_d"])
            self.scheduler_d.load_state_dict(payload["scheduler_d"])
        self.step = int(payload["step"])
        # Checkpoints written before --select_by kept the mel distance (inf before any validation) under this name.
        self.best_selection = float(payload.get("best_selection", payload.get("best_mel_distance", math.nan)))
        self.nan_skipped = int(payload["nan_skipped_steps"])
        self.train_seconds = float(payload.get("train_seconds", 0.0))
        self.audio_seconds_trained = float(payload.get("audio_seconds_trained", math.nan))  # nan: known after data
        self._epochs_before = float(payload.get("epochs_trained", math.nan))
        rng = payload["rng"]
        torch.set_rng_state(rng["torch"][self.dist.rank % len(rng["torch"])])
        random.setstate((rng["python_version"], tuple(rng["python_state"]), None))
        if self.device.type == "cuda" and rng.get("cuda"):
            torch.cuda.set_rng_state(rng["cuda"][self.dist.rank % len(rng["cuda"])])
        log.info("resumed from %s at step %d", self.dir / "latest.pt", self.step)

    def _load_data(self, resumed: bool) -> None:
        config, dist = self.config, self.dist
        rate = self.codec_config.sample_rate
        segment = int(config.segment_seconds * rate)
        self.manifest_dir = self.dir / "manifests"
        excluded = read_file_list(Path(config.exclude)) if config.exclude else set()
        manifests = self._manifests([parse_data_dir(spec)[0] for spec in config.data_dirs])
        reader = CropReader(rate, self.manifest_dir, in_memory=config.in_memory)
        corpora, held = [], []
        listed = self._held_out_before() if resumed else None
        self._held_out_listed = bool(listed)
        for index, (spec, manifest) in enumerate(zip(config.data_dirs, manifests, strict=True)):
            weight = parse_data_dir(spec)[1]
            kept = [e for e in manifest.entries if e.path.resolve() not in excluded] if excluded else (
                manifest.entries)
            if not kept:
                raise DataError(f"{manifest.root}: every file is in the --exclude list {config.exclude}")
            entries, held_here = kept, []
            if listed is not None:
                held_here = [e for e in kept if e.path.resolve() in listed]
                entries = [e for e in kept if e.path.resolve() not in listed]
            elif not config.val_dir and not config.no_validation:
                entries, held_here = hold_out(kept, config.seed, index)
            held += held_here
            seconds = sum(e.seconds for e in entries)
            mine = rank_share(entries, config.seed, index, dist.rank, dist.world_size)
            corpora.append(Corpus(manifest.root, mine, seconds if weight is None else weight, manifest.skipped,
                                  len(held_here), seconds, len(entries), len(manifest.entries) - len(kept)))
        if config.exclude and dist.is_main and (warning := exclude_list_warning(
                Path(config.exclude), excluded, sum(c.excluded for c in corpora))):
            log.warning("%s", warning)
        if config.in_memory:
            reader.preload(corpora)
        self.audio_seconds_per_step = config.batch_size * segment / rate * dist.world_size
        self.steps_per_epoch = max(1, math.ceil(sum(c.seconds for c in corpora) / self.audio_seconds_per_step))
        augmentation = Augmentation(gain_prob=config.gain_prob, lowpass_prob=config.lowpass_prob,
                                    noise_prob=config.noise_prob, quiet_prob=config.quiet_prob)
        noise = None
        if config.noise_dir:
            noise = NoisePool(self._manifests([Path(config.noise_dir)])[0], reader)
        self.dataset = CropDataset(CropPlan(corpora, segment, rate, config.seed, dist.rank), reader,
                                   config.batch_size, config.normalize_db, augmentation, noise)
        self.num_workers = default_workers(dist.local_world_size) if config.num_workers is None else (
            config.num_workers)
        if config.threads is not None or self.device.type == "cpu":
            torch.set_num_threads(config.threads or default_cpu_threads(dist.local_world_size, self.num_workers))
        self._batches = None
        self._next_step = -1
        self._last: tuple[int, Tensor] | None = None
        self.validation = self._validation_clips(held, reader)
        if dist.is_main:
            log.info("training data:\n%s", data_summary(corpora))
            for corpus in corpora:
                if corpus.entries and max(e.seconds for e in corpus.entries) < config.segment_seconds:
                    log.warning("every clip of %s is shorter than the %g s crops: each crop is a whole clip "
                                "padded with silence (shorter crops, codec-train's --segment_seconds, waste less)",
                                corpus.root,
                                config.segment_seconds)
            threads = torch.get_num_threads()
            log.info("%d %s per epoch of %.1f audio-s each; %d data %s and %d torch %s per process",
                     self.steps_per_epoch, plural(self.steps_per_epoch, "step"), self.audio_seconds_per_step,
                     self.num_workers, plural(self.num_workers, "worker"), threads, plural(threads, "thread"))

    def _held_out_before(self) -> set[Path] | None:
        """The files a resumed run held out, from its validation_files.txt (None if it held none out): drawn again,
        the seeded share would change with every recording added since (found from outside: the resumed run
        validated on a file it had trained on, and trained on the one it had held out)."""
        listing = self.dir / VALIDATION_LISTING
        if self.config.val_dir or self.config.no_validation or not listing.is_file():
            return None
        listed = {Path(line).resolve() for line in listing.read_text(encoding="utf-8").splitlines() if line}
        gone = sorted(str(path) for path in listed if not path.is_file())
        if gone and self.dist.is_main and len(gone) == len(listed):  # found from outside: "validates on the rest"
            # A resume refuses --val_dir (found from outside: the advice was to pass it).
            log.warning("every file this run held out for validation is gone (%d; first: %s): validation is off, "
                        "and best.pt becomes the latest model; to validate, put them back, or go on in a new "
                        "folder: codec-train --init_from %s --val_dir SPEECH ...", len(gone), gone[0],
                        self.dir / "latest.pt")
        elif gone and self.dist.is_main:
            log.warning("%d of the %d files this run held out for validation %s gone (first: %s): it validates on "
                        "the rest", len(gone), len(listed), plural(len(gone), "is", "are"), gone[0])
        return listed

    def _check_val_dir_apart(self) -> None:
        """Warn when the --val_dir is a --data_dir, or inside or around one (folders are read recursively)."""
        val = Path(self.config.val_dir)
        for spec in self.config.data_dirs:
            data = parse_data_dir(spec)[0]
            if overlapping_pair([val, data]) is None:
                continue
            if val.resolve() == data.resolve():
                log.warning("--val_dir %s is also a --data_dir: validation scores speech the model trains on", val)
            else:  # found from outside: a val/ folder inside the training folder trained on its clips, silently
                where = "inside" if data.resolve() in val.resolve().parents else "around"
                log.warning("--val_dir %s is %s the --data_dir %s: validation scores speech the model trains on "
                            "(move it out, or leave its files out with --exclude)", val, where, data)

    def _manifests(self, roots: list[Path]) -> list[Manifest]:
        """Rank 0 builds (or refreshes) each folder's manifest; the other ranks then read the cache it wrote."""
        def build() -> list[Manifest]:
            return [load_manifest(root, self.manifest_dir, min_seconds=0.1, progress=self.dist.is_main)
                    for root in roots]

        if not self.dist.enabled:
            return build()
        manifests = build() if self.dist.is_main else None
        torch.distributed.barrier()
        return manifests if manifests is not None else build()

    def _validation_clips(self, held: list, reader: CropReader) -> list[Tensor]:
        """The clips every validation scores; none (validation off, with a warning) when every one is silent or
        none could be read (found from outside: a silent held-out file logged SNR nan at every validation and
        chose best.pt by the mel distance of silence; an unreadable one left the run unvalidated without a word)."""
        clips = self._candidate_clips(held, reader)
        if clips and not all(bool(silent(clip[None])[0]) for clip in clips):
            return clips
        if self.dist.is_main and (held or self.config.val_dir):
            source = self.config.val_dir or self.dir / VALIDATION_LISTING
            log.warning("validation: off: %s", f"every clip of {source} is silent (under -80 dBFS), so there is "
                        "nothing to score" if clips else f"none of the held-out files ({source}) could be read")
            log.warning("validation: best.pt is the latest model; pass --val_dir with speech to validate")
        return []

    def _candidate_clips(self, held: list, reader: CropReader) -> list[Tensor]:
        config = self.config
        if config.val_dir:
            clips = load_validation(Path(config.val_dir), reader.sample_rate, config.val_clips)
            if self.dist.is_main:
                log.info("validation: %d %s of %s, %.1f s in all", len(clips), plural(len(clips), "clip"),
                         config.val_dir, sum(c.numel() for c in clips) / reader.sample_rate)
                self._check_val_dir_apart()
            return clips
        if config.no_validation:
            if self.dist.is_main:
                log.info("validation: off (--no_validation); best.pt is the latest model")
            return []
        if not held:
            if self.dist.is_main and not self._held_out_listed:  # a resumed run whose held-out files are gone: said
                log.warning("validation: off: no --val_dir, and no data folder has the %d files needed to hold "
                            "some out; pass --val_dir to validate", VAL_MIN_FILES)
            return []
        listing = self.dir / VALIDATION_LISTING
        if self.dist.is_main:
            listing.write_text("".join(f"{e.path}\n" for e in held), encoding="utf-8")
            log.info("validation: no --val_dir, so %d %s (%g%% of each folder of %d or more, seed %d) %s held "
                     "out and never trained on; validating on the first %g s of %s; listed in %s",
                     len(held), plural(len(held), "file"), 100 * VAL_SHARE, VAL_MIN_FILES, config.seed,
                     plural(len(held), "is", "are"), VAL_MAX_SECONDS,
                     f"{config.val_clips} of them" if config.val_clips else "each", listing)
        return held_out_clips(held, reader, config.val_clips)

    @property
    def epochs_trained(self) -> float:
        """Epochs trained: those before the step this process started from, then its steps over today's epoch."""
        return self._epochs_before + (self.step - self._start_step) / self.steps_per_epoch

    @property
    def total_steps(self) -> int:
        by_epochs = self.config.num_epochs * self.steps_per_epoch
        return min(by_epochs, self.config.max_steps) if self.config.max_steps is not None else by_epochs

    # -- one step ------------------------------------------------------------------------------------
    def _autocast(self):
        if self.device.type == "cuda" and self.config.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _batch(self) -> Tensor:
        """This step's batch from the workers (a step asked for again, e.g. after a skip, is served again)."""
        if self._last is not None and self._last[0] == self.step:
            return self._last[1]
        if self._batches is None or self._next_step != self.step:
            started = time.perf_counter()
            self.close_data()
            self._batches = batches(self.dataset, self.step, self.num_workers, self.device.type == "cuda")
            batch = next(self._batches)
            if self.dist.is_main:
                log.info("first batch ready %.1f s after the data workers started", time.perf_counter() - started)
        else:
            batch = next(self._batches)
        self._next_step = self.step + 1
        batch = batch.to(self.device, non_blocking=True)
        self._last = (self.step, batch)
        return batch

    def close_data(self) -> None:
        """Stop the data workers (the next batch starts new ones)."""
        self._batches = None
        self._last = None

    def advance(self) -> dict[str, float]:
        """Train one step and move on to the next: what `run` does each step, for callers that drive the
        loop themselves (benchmarks). Returns the step's loss terms."""
        started = time.perf_counter()
        values = self.train_step()
        sync_buffers(self.model, self.dist)
        self.step += 1
        self.audio_seconds_trained += self.audio_seconds_per_step
        elapsed = time.perf_counter() - started
        self._loop_seconds += elapsed
        self.train_seconds += elapsed
        return values

    def train_step(self) -> dict[str, float]:
        """One optimisation step of the generator (and of the discriminators from their start on)."""
        w = self.weights
        audio = self._batch()
        # The quantizer's EMA codebooks move inside the forward pass: a skipped step must undo that move too.
        buffers = [b.clone() for b in self.model.buffers()]
        with self._autocast():
            out = self.generator(audio)
        fake = out.audio.float()
        terms: dict[str, Tensor] = {"recon": l1_waveform_loss(fake, audio)}
        if w.mel_weight:
            terms["mel"] = self.mel(fake, audio)
        if self.stft is not None:
            terms["stft"] = self.stft(fake, audio)
        terms["vq"] = w.commitment * out.commitment_loss.float()
        if w.checkerboard_weight:
            terms["checkerboard"] = self.model.decoder.phase_sum_deviation()
        if self.critic is not None and self.step >= w.discriminator_start:
            terms["disc"] = self._discriminator_step(audio, fake.detach())
        if self.critic is not None and self.step >= w.adversarial_start:
            with self._autocast():
                real_out, fake_out = _split(self.critic(torch.cat([audio, fake])), len(audio))
            terms["adv"] = generator_adversarial_loss(fake_out)
            terms["feat"] = feature_matching_loss(real_out, fake_out)
        loss = w.total(terms)
        if not self._finite_on_every_rank(loss):
            self._skip_nonfinite("loss", buffers)
            return {"loss": float("nan")}
        self.optimizer_g.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        # A finite loss can still have inf/NaN gradients (e.g. a sqrt at 0); clipping spreads them to every weight.
        if not torch.isfinite(grad_norm):
            self._skip_nonfinite("gradient", buffers)
            return {"loss": float("nan")}
        self.consecutive_nan = 0
        self.optimizer_g.step()
        self.scheduler_g.step()
        return {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}

    def _discriminator_step(self, real: Tensor, fake: Tensor) -> Tensor:
        with self._autocast():
            real_out, fake_out = _split(self.critic(torch.cat([real, fake])), len(real))
        loss = discriminator_loss(real_out, fake_out)
        self.optimizer_d.zero_grad(set_to_none=True)
        if self._finite_on_every_rank(loss):
            loss.backward()
            if torch.isfinite(torch.nn.utils.clip_grad_norm_(self.discriminator.parameters(), self.config.grad_clip)):
                self.optimizer_d.step()
                self.scheduler_d.step()
        self.optimizer_d.zero_grad(set_to_none=True)
        return loss.detach()

    def _finite_on_every_rank(self, value: Tensor) -> bool:
        """Whether `value` is finite on every rank: ranks must agree to skip, or the others hang in all-reduce."""
        finite = torch.isfinite(value).to(torch.float32).reshape(1)
        if self.dist.enabled:
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
        return bool(finite.item())

    def _skip_nonfinite(self, what: str, buffers: list[Tensor]) -> None:
        self.nan_skipped += 1
        self.consecutive_nan += 1
        self.optimizer_g.zero_grad(set_to_none=True)
        with torch.no_grad():
            for buffer, before in zip(self.model.buffers(), buffers, strict=True):
                buffer.copy_(before)
        log.warning("step %d: non-finite %s, step skipped (%d so far)", self.step, what, self.nan_skipped)
        if self.consecutive_nan >= self.config.max_nan_steps:
            raise TrainingError(
                f"stopped at step {self.step}: {self.consecutive_nan} consecutive non-finite losses or gradients "
                f"(lower --learning_rate, or check the data for NaN/Inf); {self.dir / 'latest.pt'} is intact"
            )

    # -- validation ------------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> tuple[Validation, dict[str, Tensor]]:
        """Metrics over the validation clips with all codebooks, and mel distance and SNR with each
        `val_codebooks` count."""
        model = self.model
        model.eval()
        rows: dict[str, list[float]] = {
            k: [] for k in ("recon", "vq", "mel", "stft", "snr", "sisdr", "amp", "pesq")
        }
        lower = {count: {"mel": [], "snr": [], "pesq": []} for count in self.config.val_codebooks}
        pesq = self.config.select_by == "pesq"
        all_codes, examples = [], {}
        for index, clip in enumerate(self.validation):
            audio = clip[None].to(self.device)
            out = model(audio)
            decoded = out.audio.float()
            rows["recon"].append(float(l1_waveform_loss(decoded, audio)))
            rows["vq"].append(float(self.weights.commitment * out.commitment_loss))
            rows["mel"].append(float(self.mel.distance(decoded, audio).mean()))
            if self.stft is not None and audio.shape[-1] >= self.stft.min_length:  # clips may be as short as 0.1 s
                rows["stft"].append(float(self.stft(decoded, audio)))
            quiet = bool(silent(audio)[0])  # its ratios measure nothing: NaN, left out of the means
            rows["snr"].append(math.nan if quiet else float(snr_db(decoded, audio).mean()))
            rows["sisdr"].append(math.nan if quiet else float(si_sdr_db(decoded, audio).mean()))
            rows["amp"].append(math.nan if quiet else float(amplitude_ratio(decoded, audio).mean()))
            if pesq:
                rows["pesq"].append(self._pesq(decoded, audio))
            all_codes.append(out.codes[0])
            for count, scores in lower.items():
                fewer = model(audio, n_codebooks=count).audio.float()
                scores["mel"].append(float(self.mel.distance(fewer, audio).mean()))
                scores["snr"].append(math.nan if quiet else float(snr_db(fewer, audio).mean()))
                if pesq:
                    scores["pesq"].append(self._pesq(fewer, audio))
            if index < 2:
                examples[f"val_{index}/decoded"] = decoded[0]
                if self.step == 0 or not self.monitor or not self.monitor.history:
                    examples[f"val_{index}/original"] = audio[0]
        self._train_mode()
        mean = {k: (_finite_mean if k in ("snr", "sisdr", "amp") else _mean)(v) for k, v in rows.items() if v}
        usage = codebook_usage(torch.cat(all_codes, dim=-1)[None], self.codec_config.codebook_size)
        loss = self.weights.total(mean)  # the reconstruction terms; adversarial ones need the critic
        result = Validation(
            step=self.step,
            epoch=self.epochs_trained,
            loss=loss,
            recon=mean["recon"],
            vq=mean["vq"],
            mel_distance=mean["mel"],
            snr_db=mean["snr"],
            si_sdr_db=mean["sisdr"],
            amplitude_ratio=mean["amp"],
            codebook_perplexity=list(usage.perplexity),
            codebook_used_fraction=list(usage.used_fraction),
            train_audio_seconds_per_second=self._throughput(),
            audio_seconds_trained=self.audio_seconds_trained,
            elapsed_seconds=self.train_seconds,
            learning_rate=self.scheduler_g.get_last_lr()[0],
            nan_skipped_steps=self.nan_skipped,
            peak_gpu_memory_gb=(
                torch.cuda.max_memory_allocated(self.device) / 2**30 if self.device.type == "cuda" else None
            ),
            mel_distance_at={str(count): _mean(scores["mel"]) for count, scores in lower.items()},
            snr_db_at={str(count): _finite_mean(scores["snr"]) for count, scores in lower.items()},
            stft_loss=mean.get("stft"),
            pesq_wb=_finite_mean(rows["pesq"]) if pesq else None,
            pesq_wb_at={str(count): _finite_mean(scores["pesq"]) for count, scores in lower.items()} if pesq else {},
        )
        return result, examples

    def _pesq(self, decoded: Tensor, reference: Tensor) -> float:
        """PESQ-WB of one validation clip ([1, T] each)."""
        return pesq_wb(decoded[0].cpu().numpy(), reference[0].cpu().numpy(), self.codec_config.sample_rate)

    def _throughput(self) -> float:
        steps = self.step - self._start_step
        return steps * self.audio_seconds_per_step / self._loop_seconds if self._loop_seconds > 0 else 0.0

    # -- checkpoints ------------------------------------------------------------------------------------
    def save(self, best: bool) -> None:
        """Write latest.pt (everything to resume) and, if `best`, best.pt (model + config), atomically."""
        payload = codec_payload(self.model)
        state: dict[str, Any] = {
            "train_config": self.config.to_dict(),
            "step": self.step,
            "best_selection": self.best_selection,
            "nan_skipped_steps": self.nan_skipped,
            "train_seconds": self.train_seconds,
            "audio_seconds_trained": self.audio_seconds_trained,
            "epochs_trained": self.epochs_trained,
            "optimizer_g": self.optimizer_g.state_dict(),
            "scheduler_g": self.scheduler_g.state_dict(),
            "rng": self._rng_states(),
        }
        if self.discriminator is not None:
            state |= {
                "discriminator": self.discriminator.state_dict(),
                "optimizer_d": self.optimizer_d.state_dict(),
                "scheduler_d": self.scheduler_d.state_dict(),
            }
        if not self.dist.is_main:
            return
        try:
            atomic_save({**payload, **state}, self.dir / "latest.pt")
            if best:
                atomic_save({**payload, "step": self.step, "best_selection": self.best_selection,
                             "select_by": self.config.select_by}, self.dir / "best.pt")
        except OSError as error:
            raise TrainingError(f"{self.dir}: could not save a checkpoint ({error.strerror or error})") from None

    def _rng_states(self) -> dict[str, Any]:
        torch_states = [torch.get_rng_state()]
        cuda_states = [torch.cuda.get_rng_state(self.device)] if self.device.type == "cuda" else []
        if self.dist.enabled:
            import torch.distributed as dist

            gathered: list[Any] = [None] * self.dist.world_size
            dist.all_gather_object(gathered, (torch_states[0], cuda_states[0] if cuda_states else None))
            torch_states = [g[0] for g in gathered]
            cuda_states = [g[1] for g in gathered if g[1] is not None]
        version, state, _ = random.getstate()
        return {"torch": torch_states, "cuda": cuda_states, "python_version": version, "python_state": list(state)}

    # -- the loop ---------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train until `max_steps`, `num_epochs` or `max_minutes`; validate and save every `eval_every`."""
        from tqdm.auto import tqdm

        config = self.config
        last: Validation | None = None
        deadline = time.monotonic() + config.max_minutes * 60 if config.max_minutes else math.inf
        if self.step and self.step >= self.total_steps and not self._validation_due:
            raise TrainingError(f"{self.dir} is at step {self.step}, at or past the last step of this command "
                                f"({self.total_steps}): nothing to train; raise --max_steps or --num_epochs")
        if self.step == 0 and self.total_steps > 0:
            try:  # step 0's data before step 0's checkpoints (and the progress bar): unreadable data leaves none
                self._batch()
            except BaseException:
                self.close_data()
                raise
        bar = tqdm(
            total=self.total_steps, initial=self.step, disable=not self.dist.is_main, unit="step",
            dynamic_ncols=True, mininterval=2.0,
        )
        self._train_mode()
        try:
            if self.step == 0 or self._validation_due:
                last = self._validate_and_save()
            while self.step < self.total_steps and time.monotonic() < deadline:
                with interrupts_deferred():  # latest.pt never holds half a step
                    values = self.advance()
                bar.update(1)
                if self.step % 10 == 0 and self.dist.is_main:
                    bar.set_postfix(loss=f"{values['loss']:.3f}", audio_s_per_s=f"{self._throughput():.1f}")
                    self.monitor.train_scalars(self.step, values)
                if self.step % config.eval_every == 0:
                    last = self._validate_and_save()
            if self.step % config.eval_every and not (self._validation_due and self.step == self._start_step):
                last = self._validate_and_save()
        except KeyboardInterrupt:
            log.warning("interrupted at step %d; saving latest.pt (continue with --resume)", self.step)
            # Workers first: a worker that the same Ctrl-C ended outside torch's worker loop exits non-zero, and
            # the loader's SIGCHLD check then raises inside this save (clean-clone CI, one run in six).
            self.close_data()
            with interrupts_deferred():
                self.save(best=False)
            raise
        finally:
            bar.close()
            self.close_data()
            if self.monitor is not None:
                self.monitor.close()
            self.release_directory()
        return TrainResult(self.step, self.best_selection, self.config.select_by, last, self.nan_skipped, self.dir)

    def _validate_and_save(self) -> Validation | None:
        result = None
        best = False
        if self.dist.is_main and self.validation:
            result, examples = self.validate()
            # Until a validation scores (found from outside: PESQ-WB on a silent clip never does, and no best.pt was
            # written), the latest model is the best known, as without validation.
            best = better(result.selection, self.best_selection, result.select_by) or not math.isfinite(
                self.best_selection)
            self.best_selection = result.selection if best else self.best_selection
            self.monitor.validation(result, examples, self.codec_config.sample_rate)
        elif self.dist.is_main:
            best = True  # without validation data the latest model is the best we know
            # and no score describes it (found from outside: a resumed run that lost its validation files ended
            # quoting the score of the best.pt it had just replaced)
            self.best_selection = math.nan
        with interrupts_deferred():  # a Ctrl-C mid-write broke torch's zip writer for the interrupt's own save
            self.save(best)
        return result

