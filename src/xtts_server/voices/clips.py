"""What a voice record says about the clips it was cloned from: their names and, when known, lengths."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import av
import numpy as np
import soundfile as sf
import torch


@dataclass(frozen=True)
class ClipInfo:
    name: str  # the upload's file name, or the path relative to the imported folder
    seconds: float | None = None  # length of the whole clip (before the cloner's max_ref_len cut)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: Any) -> ClipInfo:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ValueError(f"a clip entry must be an object with a string 'name', got {data!r}")
        seconds = data.get("seconds")
        if seconds is not None and not (isinstance(seconds, (int, float)) and seconds >= 0):
            raise ValueError(f"clip seconds must be a non-negative number, got {seconds!r}")
        return cls(data["name"], None if seconds is None else float(seconds))


def clip_seconds(
    source: str | os.PathLike[str] | bytes | IO[bytes] | np.ndarray | torch.Tensor,
    *,
    sample_rate: int | None = None,
) -> float | None:
    """Length of a clip in seconds from its header, without decoding it; None when it can't be told.

    Arrays need `sample_rate`. A file object is read from its current position and put back there.
    """
    if isinstance(source, (np.ndarray, torch.Tensor)):
        if not sample_rate or source.ndim == 0:
            return None
        return max(source.shape) / sample_rate  # [N] or [C, N] / [N, C]: channels are the short side
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    if isinstance(source, (str, os.PathLike)):
        return _header_seconds(Path(source), 0)
    if not (hasattr(source, "seekable") and source.seekable()):
        return None
    position = source.tell()
    try:
        return _header_seconds(source, position)
    finally:
        source.seek(position)


def _header_seconds(source: Path | IO[bytes], position: int) -> float | None:
    try:
        info = sf.info(source)
        if info.samplerate > 0 and info.frames > 0:
            return info.frames / info.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError):
        pass
    try:
        if not isinstance(source, Path):
            source.seek(position)
        with av.open(str(source) if isinstance(source, Path) else source) as container:
            if container.duration is not None and container.duration > 0:
                return float(container.duration / av.time_base)
            stream = next(iter(container.streams.audio), None)
            if stream is not None and stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
    except (av.FFmpegError, ValueError, OSError):
        pass
    return None
