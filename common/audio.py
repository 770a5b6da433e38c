"""Reading and writing audio files without torch: soundfile to decode, soxr to resample."""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile

from sscodec.common.errors import first_line
from sscodec.common.files import STANDARD_OUTPUT, atomic_output, copied_to_standard_output
from sscodec.common.resample import FILE_QUALITY, StreamResampler
from sscodec.common.text import duration

MIN_RATE, MAX_RATE = 1000, 768_000  # Hz: beyond any real recording, so outside is a damaged header
# Samples × channels decoded at once (2 GiB of float32, 3 hours of 48 kHz mono): a damaged header can
# declare billions of frames, and allocating them is a crash, not an error message.
MAX_VALUES = 2**29
# A piped input is spooled whole before decoding: in memory up to 64 MiB (half an hour of 16 kHz 16-bit WAV), on
# disk past that, refused past 4 GiB (six hours of 48 kHz stereo 16-bit WAV).
SPOOL_MEMORY_BYTES = 64 << 20
MAX_PIPED_BYTES = 4 << 30


# Below this share, samples past full scale are a resampler's overshoot on a loud source, not the input's level.
OVER_FULL_SCALE_SHARE = 1e-3


class LevelWatch:
    """Counts the samples beyond full scale (|x| > 1) among the audio it is shown: a float file can hold them, and
    the codec, trained on audio within full scale, distorts them (found from outside: speech × 10 came back 15 dB
    louder, correlating 0.74 with the clip at its level against 0.91)."""

    def __init__(self) -> None:
        self.samples = self.over = 0
        self.peak = 0.0

    def add(self, audio: np.ndarray) -> np.ndarray:
        """Count `audio` (any shape) and return it, so that blocks can pass through."""
        magnitude = np.abs(audio)
        self.samples += magnitude.size
        self.over += int(np.count_nonzero(magnitude > 1.0))
        self.peak = max(self.peak, float(magnitude.max(initial=0.0)))
        return audio

    def note(self, name: object) -> str | None:
        """A note on the input `name` if enough of it lay beyond full scale, else None."""
        if not self.samples or self.over / self.samples < OVER_FULL_SCALE_SHARE:
            return None
        return (f"{name}: {self.over / self.samples:.1%} of its samples lie beyond full scale (peak {self.peak:.2f}, "
                f"{20 * math.log10(self.peak):+.1f} dBFS), which the codec distorts: scale it to within -1..1")


# The audio files the tools pick up from a folder (what libsndfile decodes).
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".mp3"})


def audio_files_below(root: Path) -> list[Path]:
    """Every audio file (AUDIO_SUFFIXES, any case) in `root` and its sub-folders, sorted: the files of a folder
    of recordings for codec-train, codec-export and codec-bench alike (found from outside: export and the benchmarks
    read only the top level, and left a user's session sub-folders out without a word).

    AudioFileError for a sub-folder that cannot be read: `Path.rglob` left it out without a word (found from
    outside: codec-pack packed one speaker of two, exit 0). Linked folders are read, each real folder once."""
    def refuse(error: OSError) -> None:
        raise AudioFileError(f"{error.filename}: cannot read this folder ({error.strerror}), so its audio would be "
                             f"left out: make it readable, or move it out of {root}")

    files, read = [], set()
    # Links to folders are followed (found from outside: linked speaker folders were left out without a word),
    # each real folder read once, in name order, so that a loop of links ends and a folder linked twice counts once.
    for folder, subfolders, names in os.walk(root, onerror=refuse, followlinks=True):
        real = os.path.realpath(folder)
        if real in read:
            subfolders.clear()
            continue
        read.add(real)
        subfolders.sort()
        files += [path for path in (Path(folder, name) for name in names)
                  if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file()]
    return sorted(files)


class AudioFileError(ValueError):
    """An audio file that cannot be used: missing, unreadable, empty or not finite."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header declares: `frames` per channel at `sample_rate` Hz, `channels` channels."""

    frames: int
    sample_rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def frames_at(self, rate: int) -> int:
        """Its length in samples once resampled to `rate`."""
        return self.frames * rate // self.sample_rate


def probe_audio(path: str | os.PathLike) -> AudioInfo:
    """Read only the header of `path`; AudioFileError if it is not usable audio (no frames, absurd rate)."""
    path = _readable(Path(path))
    try:
        with _decoder_quiet(), soundfile.SoundFile(path) as handle:
            info = AudioInfo(handle.frames, handle.samplerate, handle.channels)
            log = handle.extra_info
    except _DECODE_ERRORS as error:
        raise _undecodable(path, error) from None
    if info.frames <= 0 or info.channels <= 0:
        raise AudioFileError(f"{path}: no audio samples")
    _check_rate(info.sample_rate, str(path))
    _check_not_cut_short(handle, str(path), log)
    return info


def check_decodes(path: str | os.PathLike) -> AudioInfo:
    """`probe_audio`, then decode every sample at the file's own rate: AudioFileError for a problem the header does
    not show (NaN or Inf samples, damaged data part way through). For a folder of clips read again later, whose
    one bad file must be skipped up front rather than stop the run part way (found from outside: a clip with a NaN
    stopped codec-export); 1.5 s for the 46 minutes of FLAC in telugu/train on the 2-core VM."""
    info = probe_audio(path)
    for _ in read_audio_blocks(path, info.sample_rate):
        pass
    return info


def read_frames(path: str | os.PathLike, start: int, frames: int) -> np.ndarray:
    """Frames [start, start + frames) of `path` as float32 [T, channels], T ≤ `frames` near the end.

    Seeks instead of decoding from the start (exact for WAV, FLAC and OGG; see the README on mp3).
    Raises AudioFileError for a file that cannot be opened or decoded there, or a range over `MAX_VALUES`.
    """
    path = Path(path)
    try:
        with _decoder_quiet(), soundfile.SoundFile(path) as handle:
            too_many = frames * handle.channels > MAX_VALUES
            if not too_many:
                handle.seek(start)
                data = handle.read(frames, dtype="float32", always_2d=True)
    except _DECODE_ERRORS as error:
        raise _undecodable(path, error) from None
    if too_many:
        raise AudioFileError(f"{path}: {frames:,} frames are more than {MAX_VALUES:,} values to decode at once")
    return data


# Frames decoded per block when streaming a file: 64 Ki frames is 0.5 MiB of 48 kHz stereo float32.
BLOCK_FRAMES = 1 << 16
_DECODE_ERRORS = (soundfile.LibsndfileError, RuntimeError, OSError, ValueError, TypeError, MemoryError)


def read_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Decode any soundfile-readable file to mono float32 at `sample_rate`, shape [T], all in memory.

    The same samples as `read_audio_blocks` joined; files that would give more than MAX_VALUES samples at
    `sample_rate` are refused (stream those with `read_audio_blocks`). The input is decoded block by block, so
    its own rate and channels do not count: 100 minutes of 48 kHz stereo are 96 M samples at 16 kHz.
    """
    path = _readable(Path(path))
    if not path.is_file():
        return _read_piped(path, sample_rate)
    try:
        with _decoder_quiet():
            info = soundfile.info(str(path))
    except _DECODE_ERRORS as error:
        raise _undecodable(path, error) from None
    # The rate first: a damaged one implies any length (found from outside: 1 Hz was "768,000,000 samples").
    _check_rate(info.samplerate, str(path))
    declared = math.ceil(info.frames * sample_rate / info.samplerate)
    if declared > MAX_VALUES:
        raise AudioFileError(f"{path}: declares {_length(declared, sample_rate)} of audio ({declared:,} samples at "
                             f"{sample_rate} Hz), more than the {_length(MAX_VALUES, sample_rate)} "
                             f"({MAX_VALUES:,} samples) decoded at once: split it")
    return np.concatenate(list(read_audio_blocks(path, sample_rate)))


def _length(samples: int, sample_rate: int) -> str:
    """A recording's length in hours from an hour up ("9.3 h"), else as `duration` writes it."""
    seconds = samples / sample_rate
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else duration(seconds)


def _read_piped(path: Path, sample_rate: int) -> np.ndarray:
    """`read_audio` of a pipe, FIFO or device (`cat x.flac | codec-encode /dev/stdin ...`): its bytes spooled to
    memory, or to a temp file past SPOOL_MEMORY_BYTES, and decoded from there. libsndfile reads the header
    twice and seeks in FLAC, Ogg and MP3, which a pipe cannot do (found from outside: "Format not recognised"
    for a WAV and "flac decoder lost sync" for a FLAC); the length is checked as it decodes."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool:
        try:
            with open(path, "rb") as source:
                while chunk := source.read(1 << 20):
                    if spool.tell() + len(chunk) > MAX_PIPED_BYTES:
                        # Found from outside: /dev/zero (a device) was said to be "through a pipe".
                        raise AudioFileError(f"{path}: more than {MAX_PIPED_BYTES / 2**30:g} GiB from a pipe or "
                                             "device; give it as a file")
                    spool.write(chunk)
        except OSError as error:
            raise AudioFileError(f"{path}: cannot read ({error.strerror or error})") from None
        if not spool.tell():
            raise AudioFileError(f"{path}: empty (nothing came through)")
        spool.seek(0)
        blocks, total = [], 0
        for block in _blocks(_open(spool, path), path, sample_rate, BLOCK_FRAMES):
            total += block.shape[0]
            if total > MAX_VALUES:
                raise AudioFileError(f"{path}: more than {MAX_VALUES:,} samples at {sample_rate} Hz to decode "
                                     "at once")
            blocks.append(block)
        return np.concatenate(blocks)


def read_audio_blocks(
    path: str | os.PathLike, sample_rate: int, block_frames: int = BLOCK_FRAMES
) -> Iterator[np.ndarray]:
    """Decode a file block by block to mono float32 at `sample_rate`: an iterator of non-empty blocks [n].

    Memory stays constant for any length: `block_frames` frames are decoded, mixed down and resampled with a
    streaming resampler at a time. Joined, the blocks are the whole file resampled in one pass, exactly
    (soxr's streaming contract), with round(frames × sample_rate / file rate) samples. The file is opened and
    checked here (AudioFileError: missing, unreadable, not audio, bad rate); a problem met while decoding
    (NaN or Inf, damaged data, empty) raises AudioFileError from the iteration.
    """
    path = _readable(Path(path))
    try:
        handle = _open(str(path), path)
    except AudioFileError as error:
        if path.is_file():
            raise
        # Streamed, a pipe is not spooled (live input must flow): say why a file would work.
        raise AudioFileError(f"{error}; through a pipe libsndfile reads only formats it need not seek in, such "
                             "as WAV: pipe WAV, or give a file") from None
    return _blocks(handle, path, sample_rate, block_frames)


@contextmanager
def _decoder_quiet() -> Iterator[None]:
    """Standard error (descriptor 2) to /dev/null while libsndfile decodes: its mp3 decoder, libmpg123, prints
    "Warning: Xing stream size off ..." or "Note: Illegal Audio-MPEG-Header ..." there itself, beside the one-line
    error (found from outside). Left alone where descriptor 2 is closed."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        if sys.stderr is not None:
            sys.stderr.flush()  # what was printed before still goes out
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# libsndfile says this whenever its mp3 decoder cannot open a stream, even of an existing regular file (found from
# outside: random bytes and an empty file named .mp3).
_MISLEADING = "File does not exist or is not a regular file (possibly a pipe?)."


def _undecodable(path: Path, error: BaseException, source: object = None) -> AudioFileError:
    """The one-line error for a file at `path` that libsndfile cannot decode (`source`: what it was handed, when
    not the path, a spool whose repr means nothing to the user)."""
    why = first_line(error)
    if source is not None:
        why = why.replace(repr(source), f"'{path}'")
    if _MISLEADING in why:
        return AudioFileError(f"{path}: not an audio format libsndfile reads, or damaged")
    return AudioFileError(f"{path}: cannot decode audio ({why})")


def _open(source: str | BinaryIO, path: Path) -> soundfile.SoundFile:
    """`source` (the file at `path`, or its bytes) opened for decoding, its rate checked; AudioFileError naming
    `path` otherwise."""
    try:
        with _decoder_quiet():
            handle = soundfile.SoundFile(source)
    except _DECODE_ERRORS as error:
        raise _undecodable(path, error, source) from None
    try:
        _check_rate(handle.samplerate, str(path))
        _check_not_cut_short(handle, str(path), handle.extra_info)
    except AudioFileError:
        handle.close()
        raise
    return handle


def _blocks(handle: soundfile.SoundFile, path: Path, sample_rate: int, block_frames: int) -> Iterator[np.ndarray]:
    name = str(path)
    resampler = StreamResampler(handle.samplerate, sample_rate, FILE_QUALITY)
    frames, produced = 0, 0
    with handle:
        while True:
            try:
                with _decoder_quiet():
                    data = handle.read(block_frames, dtype="float32", always_2d=True)
            except _DECODE_ERRORS as error:
                raise _undecodable(path, error) from None
            frames += data.shape[0]
            last = data.shape[0] < block_frames  # a short read is the end of the file
            block = _checked(resampler.process(_mixdown(data, name), last=last), name)
            produced += block.shape[0]
            if block.shape[0]:
                yield block
            if last:
                break
    if frames == 0:
        raise AudioFileError(f"{name}: no audio samples")
    # libsndfile ends a read at damaged data (an MP3's, at least) as if the file ended there; the length the file
    # declares says it did not. An MP3 without a length header declares an estimate, off by a few of its
    # 1,152-sample frames, hence the slack.
    if not _length_unknown(handle):
        _check_length(frames, handle.frames, handle.samplerate, name)
    if produced == 0:
        raise AudioFileError(f"{name}: shorter than one sample at {sample_rate} Hz")


# Bytes per sample of the WAV encodings libsndfile writes and reads.
_WAV_SAMPLE_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4,
                     "FLOAT": 4, "DOUBLE": 8}
# What a WAV streamed into a pipe holds in its RIFF and data sizes, which its writer cannot go back and fill in
# (ffmpeg's `-f wav -`, among others): libsndfile then declares this many bytes of samples.
_WAV_UNKNOWN_SIZE = 0xFFFFFFFF


def _check_length(frames: int, declared: int, sample_rate: int, name: str) -> None:
    """AudioFileError when `frames` falls short of the `declared` length beyond an MP3 header's estimate (off by a
    few of its 1,152-sample frames)."""
    if frames < declared - max(declared // 100, 4 * 1152):
        raise AudioFileError(f"{name}: damaged: decoding stopped at {frames / sample_rate:.2f} s of the "
                             f"{declared / sample_rate:.2f} s it declares")


# libsndfile's log line for a WAV whose data chunk claims more bytes than the file holds.
_WAV_DATA_CUT = re.compile(r"^data : (\d+) \(should be (\d+)\)$", re.MULTILINE)


def _check_not_cut_short(handle: soundfile.SoundFile, name: str, log: str) -> None:
    """AudioFileError for a WAV file cut short: libsndfile declares only the samples the file holds, noting the
    header's larger size in its log (found from outside: a WAV cut to half its length encoded as the half, exit 0,
    where a cut MP3 or FLAC is "damaged"). A WAV whose size is the streaming placeholder is not cut short.
    `log`: the handle's `extra_info` (libsndfile's log), read while it was open."""
    width = _WAV_SAMPLE_BYTES.get(handle.subtype)
    if handle.format not in ("WAV", "WAVEX") or width is None:
        return
    cut = _WAV_DATA_CUT.search(log)
    if cut is not None and int(cut[1]) != _WAV_UNKNOWN_SIZE:
        frame_bytes = width * handle.channels
        _check_length(int(cut[2]) // frame_bytes, int(cut[1]) // frame_bytes, handle.samplerate, name)


def _length_unknown(handle: soundfile.SoundFile) -> bool:
    """The file is a WAV whose data size is the streaming placeholder: its declared length means nothing (found
    from outside: such a WAV piped to codec-stream was "damaged: decoding stopped at 3.00 s of the 134217.73 s it
    declares")."""
    width = _WAV_SAMPLE_BYTES.get(handle.subtype)
    return handle.format in ("WAV", "WAVEX") and width is not None and (
        handle.frames == _WAV_UNKNOWN_SIZE // (width * handle.channels))


def to_mono_rate(data: np.ndarray, rate: int, sample_rate: int, name: str = "audio") -> np.ndarray:
    """Mix [T, C] (or [T]) audio to mono float32 and resample from `rate` to `sample_rate`."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim not in (1, 2):
        raise AudioFileError(f"{name}: expected [samples] or [samples, channels], got {data.shape}")
    if data.size == 0:
        raise AudioFileError(f"{name}: no audio samples")
    _check_rate(rate, name)
    mono = _mixdown(data if data.ndim == 2 else data[:, None], name)
    data = _checked(StreamResampler(rate, sample_rate, FILE_QUALITY).process(mono, last=True), name)
    if data.size == 0:
        raise AudioFileError(f"{name}: shorter than one sample at {sample_rate} Hz")
    return np.ascontiguousarray(data)


def _readable(path: Path) -> Path:
    """`path` if it is a file this process may read, else AudioFileError."""
    if not path.exists():
        raise AudioFileError(f"{path}: no such file")
    if path.is_dir():
        raise AudioFileError(f"{path}: is a directory, not an audio file")
    try:
        path.open("rb").close()  # libsndfile reports a file it may not read only as "System error."
    except OSError as error:
        raise AudioFileError(f"{path}: cannot read ({error.strerror or error})") from None
    return path


def _check_rate(rate: int, name: str) -> None:
    # A garbled header can claim any rate; 1 Hz upsampled to 16 kHz would need 16000x the memory.
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioFileError(f"{name}: unsupported sample rate {rate} Hz (expected {MIN_RATE}..{MAX_RATE})")


def _mixdown(data: np.ndarray, name: str) -> np.ndarray:
    """Finite float32 [T, C] → mono [T]."""
    if not np.isfinite(data).all():
        raise AudioFileError(f"{name}: contains NaN or Inf samples")
    if data.shape[1] == 1:
        return np.ascontiguousarray(data[:, 0])
    # Summing pre-scaled channels cannot overflow float32 where a plain mean of huge samples would.
    return (data / np.float32(data.shape[1])).sum(axis=1, dtype=np.float32)


def _checked(resampled: np.ndarray, name: str) -> np.ndarray:
    if not np.isfinite(resampled).all():
        raise AudioFileError(f"{name}: samples too large to resample (beyond float32 range)")
    return resampled


def audio_container(path: Path) -> str | None:
    """The container soundfile writes a file named `path` in (it takes the format from the extension), or None.
    RAW counts as none: headerless, it is written without complaint, then unreadable without its rate, type and
    channel count. `.opus` is Ogg Opus (RFC 7845's name for it), libsndfile's OGG container with its OPUS
    subtype (found from outside: refused, though codec-pack writes Opus)."""
    if path.suffix.lower() == ".opus":
        return "OGG"
    container = path.suffix.lstrip(".").upper()
    return container if container in soundfile.available_formats() and container != "RAW" else None


def check_writable_format(path: Path) -> None:
    """AudioFileError unless soundfile can write a file named `path` (it takes the format from the extension):
    checked before any work, so a call is not accepted or a stream run only to fail at its output."""
    if os.fspath(path) == STANDARD_OUTPUT:  # always a WAV (`audio_output`)
        return
    if audio_container(path) is None:
        why = (f"no audio file format has the extension '{path.suffix}'" if path.suffix
               else "the name has no extension to choose the format by")
        raise AudioFileError(f"{path}: cannot write audio ({why}: use e.g. .wav, .flac, .ogg, .opus or .mp3)")


OPUS_RATES = (8000, 12000, 16000, 24000, 48000)  # the rates Opus codes (RFC 6716, 2)


class AudioWriter:
    """Writes mono float audio to a file block by block (a context manager); the format follows the extension.

    WAV and FLAC are written as 16-bit PCM. `exact` keeps the float32 samples bit for bit where the format can
    hold them (WAV, AIFF, CAF, W64), so a recording can be replayed through the codec and give the same output.
    Samples are clipped to [-1, 1]. AudioFileError when the file cannot be created or written.
    """

    def __init__(self, path: str | os.PathLike, sample_rate: int, exact: bool = False) -> None:
        self.path = Path(path)
        check_writable_format(self.path)
        suffix = self.path.suffix.lower()
        subtype = {".wav": "PCM_16", ".flac": "PCM_16", ".opus": "OPUS"}.get(suffix)
        container = audio_container(self.path)
        if exact and container is not None and suffix != ".opus" and soundfile.check_format(container, "FLOAT"):
            subtype = "FLOAT"
        if suffix == ".opus" and sample_rate not in OPUS_RATES:
            raise AudioFileError(f"{self.path}: cannot write audio (Opus codes {', '.join(map(str, OPUS_RATES))} Hz, "
                                 f"not {sample_rate} Hz: use e.g. .wav or .flac)")
        try:
            self._file = soundfile.SoundFile(str(self.path), "w", sample_rate, 1, format=container, subtype=subtype)
        except (soundfile.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as error:
            raise AudioFileError(f"{self.path}: cannot write audio ({first_line(error)})") from None

    def write(self, audio: np.ndarray) -> None:
        """Append mono samples [n]."""
        try:
            self._file.write(np.clip(audio, -1.0, 1.0))
        except (soundfile.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as error:
            raise AudioFileError(f"{self.path}: cannot write audio ({first_line(error)})") from None

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> AudioWriter:  # noqa: PYI034 -- typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def audio_output(path: str | os.PathLike) -> Iterator[Path]:
    """The file to give `AudioWriter` for the audio OUTPUT `path`, which gets it whole or not at all:
    `atomic_output`'s temp file, or for STANDARD_OUTPUT ("-") a temp WAV copied to standard output once complete
    (`copied_to_standard_output`). A WAV header holds the length, which libsndfile writes by seeking back, and a pipe
    cannot seek (found from outside: `codec-decode x.sscb - | player` was "-: cannot write audio")."""
    with copied_to_standard_output(".wav") if os.fspath(path) == STANDARD_OUTPUT else atomic_output(path) as temp:
        yield temp


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, exact: bool = False) -> None:
    """Write mono float audio [T] in one go, as `AudioWriter` does, whole or not at all (`audio_output`)."""
    with audio_output(path) as temp, AudioWriter(temp, sample_rate, exact) as writer:
        writer.write(audio)
