"""RIFF/WAVE headers for mono 16-bit PCM, µ-law and A-law, with known or unknown length.

A whole file gets the real sizes. A streamed file is sent before its length is known, so its RIFF and
data sizes are 0xFFFFFFFF, as FFmpeg writes them to a pipe. Checked to read up to the end of the bytes
given: FFmpeg (PyAV, the CLI), libsndfile (soundfile), Python's `wave`, and Chromium 156 (both
`decodeAudioData` and an `<audio>` element fed over chunked HTTP with no length).

Layouts (little-endian, as RIFF is):
- PCM: `RIFF <size> WAVE`, a 16-byte `fmt ` (tag 1), `data <size>`: the 44-byte canonical header.
- µ-law / A-law (tags 7 / 6): an 18-byte `fmt ` (cbSize = 0), as the spec asks of non-PCM tags. A
  whole file also has a `fact` chunk with its sample count (as libsndfile writes it); a streamed one
  has none (its count is unknown; FFmpeg leaves it out too).
"""

from __future__ import annotations

import struct
from typing import Literal

WavEncoding = Literal["pcm_s16le", "mulaw", "alaw"]

UNKNOWN_SIZE = 0xFFFFFFFF  # "until the end of the stream"
_FORMAT_TAG = {"pcm_s16le": 1, "alaw": 6, "mulaw": 7}  # WAVE_FORMAT_PCM / _ALAW / _MULAW
_BYTES_PER_SAMPLE = {"pcm_s16le": 2, "alaw": 1, "mulaw": 1}


def wav_header(encoding: WavEncoding, sample_rate: int, num_samples: int | None = None) -> bytes:
    """The header of a mono WAV file whose data chunk (the samples) follows it directly.

    num_samples: the length of the data, or None for a stream of unknown length.
    """
    tag = _FORMAT_TAG[encoding]
    width = _BYTES_PER_SAMPLE[encoding]
    fmt = struct.pack("<HHIIHH", tag, 1, sample_rate, sample_rate * width, width, 8 * width)
    if encoding != "pcm_s16le":
        fmt += struct.pack("<H", 0)  # cbSize: no extra format bytes
    chunks = _chunk(b"fmt ", fmt)
    if num_samples is None:
        data_size = riff_size = UNKNOWN_SIZE
    else:
        if encoding != "pcm_s16le":
            chunks += _chunk(b"fact", struct.pack("<I", num_samples))
        data_size = num_samples * width
        pad = data_size % 2  # RIFF chunks are word-aligned; the caller appends the pad byte
        riff_size = 4 + len(chunks) + 8 + data_size + pad
        if riff_size > UNKNOWN_SIZE:
            raise ValueError(f"{num_samples} samples do not fit in a WAV file (4 GiB at most)")
    return b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + chunks + b"data" + struct.pack("<I", data_size)


def _chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload
