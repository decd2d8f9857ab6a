"""Encoders behind `formats.StreamEncoder`: float32 mono samples at the output rate in, bytes out.

Each takes samples already resampled, NaN-free and clipped to [-1, 1] (`formats` does that), and has
the same three calls: `encode(samples) -> bytes` (whatever is ready), `finish() -> bytes` (flush and
trailer) and `close()` (drop an unfinished stream). A `whole` encoder makes one complete file and
returns it from `finish()`; a streamed one returns bytes as soon as they exist.

- `PcmEncoder`: raw s16le, no codec.
- `G711Encoder`: µ-law / A-law bytes from FFmpeg's `pcm_mulaw` / `pcm_alaw` codecs (through PyAV).
- `WavEncoder`: a RIFF header (`wav_header`) in front of either of those.
- `MuxedEncoder`: an FFmpeg codec and muxer (through PyAV) writing into memory: MP3, Opus in Ogg,
  FLAC, AAC in ADTS. Streamed, the muxer sees a non-seekable output and flushes after every packet,
  so what it has written is handed back from the same `encode` call.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Literal, Protocol, cast

import av
import numpy as np
from av.audio.codeccontext import AudioCodecContext
from av.audio.stream import AudioStream

from xtts_server.audio.wav_header import wav_header

G711Law = Literal["mulaw", "alaw"]
WavEncoding = Literal["pcm_s16le", "mulaw", "alaw"]

# Full scale of the int16 conversion: +-1.0 -> +-32767, symmetric, so a clipped sample never wraps.
INT16_SCALE = 32767.0


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Clipped float samples -> little-endian int16, rounded to nearest."""
    return np.rint(samples * INT16_SCALE).astype("<i2")


class Encoder(Protocol):
    def encode(self, samples: np.ndarray) -> bytes: ...
    def finish(self) -> bytes: ...
    def close(self) -> None: ...


class PcmEncoder:
    """Raw signed 16-bit little-endian samples, no header."""

    def encode(self, samples: np.ndarray) -> bytes:
        return to_int16(samples).tobytes()

    def finish(self) -> bytes:
        return b""

    def close(self) -> None:
        pass


class G711Encoder:
    """ITU-T G.711 µ-law or A-law, one byte per sample (a per-sample table: no state, no delay)."""

    def __init__(self, law: G711Law, sample_rate: int) -> None:
        self._codec = cast(AudioCodecContext, av.CodecContext.create(f"pcm_{law}", "w"))
        self._codec.sample_rate = sample_rate
        self._codec.layout = "mono"
        self._codec.format = "s16"
        self._rate = sample_rate
        self._pts = 0

    def encode(self, samples: np.ndarray) -> bytes:
        if samples.size == 0:
            return b""
        frame = av.AudioFrame.from_ndarray(to_int16(samples)[None], format="s16", layout="mono")
        frame.sample_rate = self._rate
        frame.pts = self._pts
        self._pts += samples.size
        return b"".join(bytes(p) for p in self._codec.encode(frame))

    def finish(self) -> bytes:
        return b""

    def close(self) -> None:
        pass


class WavEncoder:
    """A mono WAV file: PCM s16le, µ-law or A-law samples behind a RIFF header.

    Streamed, the first `encode` returns the header (sizes 0xFFFFFFFF: length unknown) with the first
    samples. Whole, `finish` returns header (real sizes) + samples + the pad byte RIFF wants after
    an odd-length data chunk.
    """

    def __init__(self, encoding: WavEncoding, sample_rate: int, whole: bool) -> None:
        self._encoding = encoding
        self._rate = sample_rate
        self._whole = whole
        self._inner: Encoder = PcmEncoder() if encoding == "pcm_s16le" else G711Encoder(encoding, sample_rate)
        self._width = 2 if encoding == "pcm_s16le" else 1
        self._parts: list[bytes] = []  # whole: the data so far
        self._header_sent = False

    def encode(self, samples: np.ndarray) -> bytes:
        data = self._inner.encode(samples)
        if self._whole:
            self._parts.append(data)
            return b""
        if not self._header_sent:
            self._header_sent = True
            return wav_header(self._encoding, self._rate) + data
        return data

    def finish(self) -> bytes:
        tail = self._inner.finish()
        if not self._whole:
            return tail if self._header_sent else wav_header(self._encoding, self._rate) + tail
        data = b"".join([*self._parts, tail])
        header = wav_header(self._encoding, self._rate, len(data) // self._width)
        return header + data + b"\0" * (len(data) % 2)

    def close(self) -> None:
        self._parts.clear()


class _StreamSink:
    """A write-only, non-seekable file for PyAV: the muxer writes for a pipe (sizes left unknown)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


@dataclass(frozen=True)
class MuxSpec:
    """How FFmpeg makes one format: muxer, codec, the sample format it is fed, its options."""

    container: str  # FFmpeg muxer name
    codec: str  # FFmpeg encoder name
    sample_format: str  # what the encoder takes: "fltp"/"flt" float, "s16" integer (lossless codecs)
    bit_rate: int | None = None  # bits/s for lossy codecs
    codec_options: dict[str, str] = field(default_factory=dict)
    container_options: dict[str, str] = field(default_factory=dict)


class MuxedEncoder:
    """An FFmpeg encoder + muxer writing into memory.

    Whole, the muxer writes to a seekable buffer, so it can go back and fill in what it learns at the
    end (MP3: a Xing/LAME frame with the length and the encoder delay to trim; FLAC: STREAMINFO with
    the sample count and MD5). Streamed, it writes to a pipe-like sink and those stay "unknown", as
    both formats allow for streams.
    """

    def __init__(self, spec: MuxSpec, sample_rate: int, whole: bool) -> None:
        self._rate = sample_rate
        self._sample_format = spec.sample_format
        self._file: io.BytesIO | _StreamSink = io.BytesIO() if whole else _StreamSink()
        # bitexact: no library version strings in the output (the bytes stay the same across releases).
        options = {"fflags": "+bitexact", **spec.container_options}
        if not whole:
            options["flush_packets"] = "1"  # hand every packet to the sink as soon as it is muxed
        self._container = av.open(self._file, "w", format=spec.container, container_options=options)
        try:
            stream = cast(
                AudioStream,
                self._container.add_stream(
                    spec.codec,
                    rate=sample_rate,
                    layout="mono",
                    options={"flags": "+bitexact", **spec.codec_options},
                ),
            )
            codec = stream.codec_context
            codec.format = spec.sample_format
            if spec.bit_rate is not None:
                codec.bit_rate = spec.bit_rate
            self._stream = stream
            # Opens the codec and writes the container header now, so the first bytes can leave
            # before the encoder has produced its first packet.
            self._container.start_encoding()
        except BaseException:
            self._container.close()
            raise
        self._pts = 0
        self._closed = False

    def encode(self, samples: np.ndarray) -> bytes:
        if samples.size:
            if self._sample_format == "s16":
                frame = av.AudioFrame.from_ndarray(to_int16(samples)[None], format="s16", layout="mono")
            else:
                planar = self._sample_format.endswith("p")
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(samples, dtype=np.float32)[None],
                    format="fltp" if planar else "flt",
                    layout="mono",
                )
            frame.sample_rate = self._rate
            frame.pts = self._pts
            self._pts += samples.size
            # PyAV cuts the input into the codec's frame size and keeps the rest for the next call.
            self._container.mux(self._stream.encode(frame))
        return self._take()

    def finish(self) -> bytes:
        if self._pts == 0:
            # Nothing was encoded: a container with no audio packet (an Ogg Opus file without an
            # end-of-stream page, an MP3 of one Info frame) is refused by decoders, so send one
            # sample of silence instead.
            self.encode(np.zeros(1, np.float32))
        self._container.mux(self._stream.encode(None))
        self._container.close()
        self._closed = True
        if isinstance(self._file, io.BytesIO):
            return self._file.getvalue()
        return self._file.take()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._container.close()

    def _take(self) -> bytes:
        return b"" if isinstance(self._file, io.BytesIO) else self._file.take()
