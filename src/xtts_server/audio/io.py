"""Reading reference audio: any common file or an in-memory array -> float32 mono at the model's rate.

`load_audio` matches the reference's `load_audio` (decode, mean over channels, torchaudio-equal
resampling, clip to [-1, 1]) and adds the checks a server needs: every unusable input raises
`InvalidAudio` with a message saying what was wrong.

Decoding: libsndfile (soundfile) first, for wav/flac/ogg (vorbis, opus)/mp3/aiff and other formats it
knows; FFmpeg (PyAV) for what it cannot read (aac, m4a/mp4, webm, wma, ...). Both read from the
file object or bytes in memory; nothing is written to disk. For lossy formats the two decoders agree
to ~1e-6; the reference decodes with FFmpeg (torchcodec).
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import IO

import av
import numpy as np
import soundfile as sf
import torch

from xtts_server.audio.resample import resample
from xtts_server.errors import InvalidAudio

AudioSource = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | np.ndarray | torch.Tensor

SILENCE_PEAK = 1e-4  # a clip whose loudest sample is below this (-80 dBFS) carries no voice
MAX_ARRAY_CHANNELS = 8  # a 2-D array with a side this short or shorter is read as channels x samples
_DECODE_MARGIN_S = 0.1  # decoded past max_seconds so the resampler's edge sees the same samples

# Integer PCM -> float scale (the decoders' convention: full scale is 2^(bits - 1)).
_INT_SCALE = {np.dtype(np.int8): 2.0**7, np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31}


def load_audio(
    source: AudioSource,
    sample_rate: int,
    *,
    source_sample_rate: int | None = None,
    max_seconds: float | None = None,
) -> torch.Tensor:
    """Decode `source` to float32 mono [1, N] at `sample_rate`, clipped to [-1, 1].

    source: a path, the bytes of an encoded file, a binary file object (read from its current
        position), or raw samples as a numpy array / torch tensor. Raw samples need
        `source_sample_rate` and may be [N], [C, N] or [N, C]: a 2-D array whose shorter side has
        at most 8 entries is read with that side as channels (a tie reads as [C, N]). Float samples
        are taken as they are; int8/int16/int32 are scaled by their full scale, uint8 is offset
        binary (128 = 0).
    max_seconds: keep only this much of the start of the audio (as the reference's
        `audio[:, :sample_rate * max_ref_length]`); decoding stops shortly after it.

    Channels are averaged, then the audio is resampled like `torchaudio.functional.resample`.
    Raises InvalidAudio for empty, missing, undecodable, zero-length, non-finite or silent input.
    """
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds!r}")
    if isinstance(source, np.ndarray | torch.Tensor):
        if source_sample_rate is None:
            raise ValueError("raw samples need source_sample_rate")
        if int(source_sample_rate) != source_sample_rate or source_sample_rate <= 0:
            raise InvalidAudio(f"the sample rate must be a positive integer, got {source_sample_rate!r}")
        wav, rate = samples_to_tensor(source), int(source_sample_rate)
    else:
        if source_sample_rate is not None:
            raise ValueError("source_sample_rate is only for raw samples; encoded audio carries its rate")
        wav, rate = decode_audio(
            source, max_seconds=None if max_seconds is None else max_seconds + _DECODE_MARGIN_S
        )

    if wav.shape[-1] == 0:
        raise InvalidAudio("the audio has no samples (zero length)")
    if not torch.isfinite(wav).all():
        raise InvalidAudio("the audio contains NaN or infinite samples")
    if wav.shape[0] != 1:
        wav = torch.mean(wav, dim=0, keepdim=True)  # [1, N]
    if max_seconds is not None:
        wav = wav[:, : math.ceil((max_seconds + _DECODE_MARGIN_S) * rate)]
    wav = resample(wav, rate, int(sample_rate))
    if max_seconds is not None:
        wav = wav[:, : int(max_seconds * sample_rate)]
    if wav.abs().max() < SILENCE_PEAK:
        raise InvalidAudio(f"the audio is silent (peak below {SILENCE_PEAK:g}); a voice sample is needed")
    return wav.clamp_(-1.0, 1.0).contiguous()


def samples_to_tensor(samples: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Raw samples ([N], [C, N] or [N, C]; see `load_audio`) -> float32 [C, N]."""
    if isinstance(samples, torch.Tensor):
        tensor = samples.detach().cpu()
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor = tensor.float()
        array = tensor.numpy()
    else:
        array = np.asarray(samples)
    if array.ndim == 1:
        array = array[None, :]
    elif array.ndim == 2:
        rows, cols = array.shape
        if cols < rows and cols <= MAX_ARRAY_CHANNELS:
            array = array.T  # [N, C] -> [C, N]
        elif rows > MAX_ARRAY_CHANNELS:
            raise InvalidAudio(
                f"cannot tell channels from samples in an array of shape {array.shape}; "
                f"pass [N], [C, N] or [N, C] with at most {MAX_ARRAY_CHANNELS} channels"
            )
    else:
        raise InvalidAudio(f"audio samples must be 1-D or 2-D, got shape {array.shape}")
    if array.size == 0:
        raise InvalidAudio("the audio has no samples (zero length)")
    if array.dtype.kind == "f":
        out = array.astype(np.float32)
    elif array.dtype in _INT_SCALE:
        out = (array.astype(np.float64) / _INT_SCALE[array.dtype]).astype(np.float32)
    elif array.dtype == np.uint8:
        out = ((array.astype(np.float64) - 128.0) / 128.0).astype(np.float32)
    else:
        raise InvalidAudio(
            f"unsupported sample type {array.dtype}; use float, int8, int16, int32 or uint8 samples"
        )
    return torch.from_numpy(np.ascontiguousarray(out))


def decode_audio(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes],
    *,
    max_seconds: float | None = None,
) -> tuple[torch.Tensor, int]:
    """Decode an encoded file to (float32 [C, N], sample rate), stopping after `max_seconds`."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise InvalidAudio(f"audio file {str(path)!r} does not exist")
        if path.is_dir():
            raise InvalidAudio(f"{str(path)!r} is a directory, not an audio file")
        try:
            with path.open("rb") as file:
                return _decode_file(file, max_seconds)
        except PermissionError as exc:
            raise InvalidAudio(f"audio file {str(path)!r} cannot be read: {exc.strerror}") from exc
    if isinstance(source, bytes | bytearray | memoryview):
        return _decode_file(io.BytesIO(source), max_seconds)
    if hasattr(source, "read"):
        return _decode_file(source, max_seconds)
    raise TypeError(f"cannot read audio from a {type(source).__name__}")


def _decode_file(file: IO[bytes], max_seconds: float | None) -> tuple[torch.Tensor, int]:
    if not _seekable(file):
        file = io.BytesIO(file.read())  # both decoders need to seek (headers, format probing)
    start = file.tell()
    if not file.read(1):
        raise InvalidAudio("the audio input is empty (0 bytes)")
    file.seek(start)
    try:
        data, rate = _decode_soundfile(file, max_seconds)
    except (sf.LibsndfileError, RuntimeError):
        file.seek(start)
        data, rate = _decode_pyav(file, max_seconds)
    return torch.from_numpy(np.ascontiguousarray(data)), rate


def _seekable(file: IO[bytes]) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _decode_soundfile(file: IO[bytes], max_seconds: float | None) -> tuple[np.ndarray, int]:
    with sf.SoundFile(file) as snd:
        frames = -1 if max_seconds is None else math.ceil(max_seconds * snd.samplerate)
        data = snd.read(frames, dtype="float32", always_2d=True)  # [N, C]
        return data.T, int(snd.samplerate)


def _decode_pyav(file: IO[bytes], max_seconds: float | None) -> tuple[np.ndarray, int]:
    try:
        container = av.open(file, mode="r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise InvalidAudio(
            "could not decode the audio: not a recognised audio format, or the data is corrupt "
            f"({exc}). Use wav, flac, mp3, ogg/opus, aac or m4a."
        ) from exc
    with container:
        if not container.streams.audio:
            raise InvalidAudio("the file has no audio stream")
        stream = container.streams.audio[0]
        chunks: list[np.ndarray] = []
        rate = 0
        resampler: av.AudioResampler | None = None
        try:
            for frame in container.decode(stream):
                if resampler is None:
                    # format conversion only (planar float32): same rate and layout as the first frame
                    rate = frame.sample_rate
                    resampler = av.AudioResampler(format="fltp", layout=frame.layout, rate=rate)
                chunks += [out.to_ndarray() for out in resampler.resample(frame)]  # [C, n] each
                if max_seconds is not None and sum(c.shape[1] for c in chunks) >= max_seconds * rate:
                    break
            if resampler is not None:
                chunks += [out.to_ndarray() for out in resampler.resample(None)]
        except (av.FFmpegError, ValueError) as exc:
            raise InvalidAudio(f"the audio data is corrupt and could not be decoded ({exc})") from exc
    if not chunks:
        raise InvalidAudio("the audio has no samples (zero length)")
    data = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    if max_seconds is not None:
        data = data[:, : math.ceil(max_seconds * rate)]
    return data, rate
