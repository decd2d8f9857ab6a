"""Output audio formats: the engine's float32 mono 24 kHz samples -> the bytes a client asked for.

`parse_format(name, sample_rate)` validates a request into an `AudioFormat`; `StreamEncoder` turns
chunks into bytes as they come (one encoder per response); `encode_whole` makes a complete file.

| name      | container | codec           | rates, Hz (* default)       | media type (Content-Type)  |
|-----------|-----------|-----------------|-----------------------------|----------------------------|
| pcm       | none      | s16le           | 8k 16k 22.05k 24k* 44.1k 48k| audio/pcm; rate=R;         |
|           |           |                 |                             |   channels=1; format=s16le |
| wav       | RIFF/WAVE | PCM s16le       | as pcm                      | audio/wav                  |
| mp3       | none      | MP3 (LAME), CBR | as pcm                      | audio/mpeg                 |
| opus      | Ogg       | Opus (libopus)  | 8k 12k 16k 24k* 48k         | audio/ogg; codecs=opus     |
| flac      | FLAC      | FLAC            | as pcm                      | audio/flac                 |
| aac       | ADTS      | AAC-LC (FFmpeg) | as pcm                      | audio/aac                  |
| mulaw     | none      | G.711 µ-law     | 8k*                         | audio/PCMU; rate=8000; ... |
| alaw      | none      | G.711 A-law     | 8k*                         | audio/PCMA; rate=8000; ... |
| mulaw_wav | RIFF/WAVE | G.711 µ-law     | 8k*                         | audio/wav                  |
| alaw_wav  | RIFF/WAVE | G.711 A-law     | 8k*                         | audio/wav                  |

Latency and cost, measured on one core of the 2-core AMD EPYC dev machine (24 kHz in, 100 ms chunks;
"playable" is what FFmpeg decodes from the bytes returned so far, codec priming not counted; "held"
is the audio fed but not yet playable after 1 s, steady state; it leaves with later chunks or
`finish()`; cost is CPU ms per second of audio, streamed in 200 ms chunks):

| format @ rate      | kbit/s   | 1st encode(100 ms): bytes, playable | held      | cost ms/s |
|--------------------|----------|-------------------------------------|-----------|-----------|
| pcm, wav @ 24k     | 384      | 4800 B, 100 ms                      | 0 ms      | 0.1       |
| pcm @ 8k / 48k     | 128/768  | 980 B, 61 ms / 6640 B, 69 ms        | 21/32 ms  | 0.3       |
| mulaw, alaw (+wav) | 64       | 490 B, 61 ms (resampler delay)      | 21 ms     | 0.3       |
| flac @ 24k         | ~315     | 3857 B, 96 ms (2304-sample blocks)  | 40 ms     | 1.0       |
| opus @ 24k         | ~40      | 528 B, 74 ms (header + packets)     | 26 ms     | 9         |
| opus @ 8k / 48k    | ~36/42   | ~310 B, 34 ms                       | 66 ms     | 3 / 10    |
| mp3 @ 24k          | 64       | 384 B, 0 ms (LAME look-ahead)       | 134 ms    | 8         |
| mp3 @ 8k / 48k     | 32/64    | 0 B                                 | 346/159 ms| 3 / 20    |
| aac @ 24k          | 64       | 465 B, 0 ms (priming + one frame)   | 104 ms    | 6         |
| aac @ 8k / 48k     | 32/64    | 0 B / 507 B, 21 ms                  | 360/83 ms | 2 / 9     |

So every format costs at most ~2 % of one core in real time; for the lowest latency use pcm, wav,
G.711 or opus. Opus gets one Ogg page per 20 ms packet (OGG_PAGE_DURATION_US): a page is written
when the next packet arrives, so only ~20 ms waits in the muxer, at ~28 bytes (~11 kbit/s) per page.

Decisions:
- Raw PCM is little-endian, so its type is not `audio/L16` (RFC 2586 defines L16 as big-endian).
- AAC goes in ADTS: every frame carries its own header, so a client can start anywhere, needs no
  index and no seeking (MP4 needs a moov box or fragments); browsers and players take `audio/aac`.
- Opus exists only at 8/12/16/24/48 kHz; another rate is refused with the list (not silently
  changed: the client asked for something else). Opus decoders play every stream at 48 kHz; the rate
  chosen is the encoder's input rate and audio bandwidth (written in the OpusHead).
- A streamed WAV has RIFF and data sizes 0xFFFFFFFF (see `wav_header`); a whole one has real sizes.
- A streamed MP3 is bare MP3 frames; a whole one also starts with a Xing/LAME frame that gives
  decoders its length and the encoder delay and padding to trim (it needs the length, so it cannot
  lead a stream).
- Samples: NaN becomes 0, then everything is clipped to [-1, 1] (again after resampling, whose
  filter can overshoot); integer formats use round(x * 32767).
- Resampling (from the engine's rate to the requested one) is soxr's HQ filter run as a stream: it
  keeps its state across chunks, so a chunked stream has exactly the samples of the whole signal
  resampled at once.
- Bit rates: mp3 (CBR) and aac 64 kbit/s (32 at 8 kHz, 48 at 16 kHz); opus 32 kbit/s constrained VBR
  (24 below 24 kHz: at 16 kbit/s and 8 kHz FFmpeg's own Opus decoder garbles the SILK layer).
- A stream in which nothing was encoded still makes a file decoders open: one sample of silence.
- Chromium 156 decodes (`decodeAudioData`) and plays (`<audio>`, chunked HTTP with no length) every
  format here, whole and streamed. Known reader limits: a streamed FLAC says "length unknown" (as
  FLAC allows); libsndfile then cannot read it to the end (FFmpeg can), and Chromium's `<audio>`
  stops at the start of its last block (up to 96 ms early at 24 kHz). A bare MP3 or ADTS stream
  decodes with the codec's priming silence at the start (MP3 1105 samples, AAC 1024).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

from xtts_server.audio.encoders import Encoder, G711Encoder, MuxedEncoder, MuxSpec, PcmEncoder, WavEncoder
from xtts_server.errors import InvalidRequest

ENGINE_SAMPLE_RATE = 24000  # what XTTS produces
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)  # offered for pcm, wav, mp3, flac, aac
OPUS_SAMPLE_RATES = (8000, 12000, 16000, 24000, 48000)  # the only rates Opus has
G711_SAMPLE_RATES = (8000,)  # telephony

OGG_PAGE_DURATION_US = 20_000  # one 20 ms Opus packet per Ogg page: see StreamEncoder's latency notes
RESAMPLER_QUALITY = "HQ"  # soxr: 20-bit precision, steep low-pass at ~0.91 of the lower Nyquist


@dataclass(frozen=True)
class _FormatSpec:
    rates: tuple[int, ...]
    default_rate: int
    extension: str  # file name extension, without the dot
    aliases: tuple[str, ...]  # other names accepted by parse_format (after lower-casing, "-" -> "_")


_FORMATS: dict[str, _FormatSpec] = {
    "pcm": _FormatSpec(SAMPLE_RATES, 24000, "pcm", ("pcm_s16le", "s16le", "raw", "linear16")),
    "wav": _FormatSpec(SAMPLE_RATES, 24000, "wav", ("wave", "pcm_wav", "wav_pcm")),
    "mp3": _FormatSpec(SAMPLE_RATES, 24000, "mp3", ("mpeg", "mpga")),
    "opus": _FormatSpec(OPUS_SAMPLE_RATES, 24000, "opus", ("ogg", "ogg_opus", "opus_ogg")),
    "flac": _FormatSpec(SAMPLE_RATES, 24000, "flac", ()),
    "aac": _FormatSpec(SAMPLE_RATES, 24000, "aac", ("adts", "aac_adts")),
    "mulaw": _FormatSpec(
        G711_SAMPLE_RATES, 8000, "ulaw", ("ulaw", "mu_law", "pcmu", "pcm_mulaw", "g711_ulaw")
    ),
    "alaw": _FormatSpec(G711_SAMPLE_RATES, 8000, "alaw", ("a_law", "pcma", "pcm_alaw", "g711_alaw")),
    "mulaw_wav": _FormatSpec(G711_SAMPLE_RATES, 8000, "wav", ("ulaw_wav", "wav_mulaw", "wav_ulaw")),
    "alaw_wav": _FormatSpec(G711_SAMPLE_RATES, 8000, "wav", ("wav_alaw",)),
}
FORMAT_NAMES = tuple(_FORMATS)
_BY_ALIAS = {alias: name for name, spec in _FORMATS.items() for alias in (name, *spec.aliases)}

# Bit rates of the lossy codecs (bits/s), by output rate: enough for clean speech, mono.
_MP3_BIT_RATE = {8000: 32_000, 16000: 48_000}  # else 64 kb/s
# Opus at 8 kHz and 16 kb/s (SILK) is mis-decoded by FFmpeg's own Opus decoder (libopus is fine);
# from 24 kb/s both agree, so nothing goes lower.
_OPUS_BIT_RATE = {8000: 24_000, 12000: 24_000, 16000: 24_000}  # else 32 kb/s
_AAC_BIT_RATE = {8000: 32_000, 16000: 48_000}  # else 64 kb/s


@dataclass(frozen=True)
class AudioFormat:
    """A validated output format (make one with `parse_format`)."""

    name: str  # canonical name: one of FORMAT_NAMES
    sample_rate: int  # Hz of the encoded audio
    media_type: str  # for Content-Type
    extension: str  # for a file name, without the dot
    bit_rate: int | None  # bits/s of a lossy codec; None for PCM, G.711 and FLAC


def parse_format(name: str, sample_rate: int | None = None) -> AudioFormat:
    """Validate a requested format name (or alias, any case) and rate; None takes its default rate.

    Raises InvalidRequest naming the valid choices for an unknown name or a rate the format lacks.
    """
    key = str(name).strip().lower().replace("-", "_")
    canonical = _BY_ALIAS.get(key)
    if canonical is None:
        aliases = ", ".join(sorted(a for a in _BY_ALIAS if a not in _FORMATS))
        raise InvalidRequest(
            f"unknown audio format {name!r}; choose one of {', '.join(FORMAT_NAMES)}"
            f" (also accepted: {aliases})"
        )
    spec = _FORMATS[canonical]
    if sample_rate is None:
        rate = spec.default_rate
    else:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
            raise InvalidRequest(f"sample rate must be a whole number of Hz, got {sample_rate!r}")
        rate = int(sample_rate)
        if rate not in spec.rates:
            choices = ", ".join(str(r) for r in spec.rates)
            raise InvalidRequest(
                f"sample rate {rate} Hz is not available for {canonical}; choose one of {choices} Hz"
            )
    media_type = _media_type(canonical, rate)
    return AudioFormat(canonical, rate, media_type, spec.extension, _bit_rate(canonical, rate))


_MEDIA_TYPES = {
    "wav": "audio/wav",
    "mulaw_wav": "audio/wav",
    "alaw_wav": "audio/wav",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg; codecs=opus",
    "flac": "audio/flac",
    "aac": "audio/aac",
}


def _media_type(name: str, rate: int) -> str:
    if name == "pcm":
        return f"audio/pcm; rate={rate}; channels=1; format=s16le"
    if name in ("mulaw", "alaw"):
        return f"audio/{'PCMU' if name == 'mulaw' else 'PCMA'}; rate={rate}; channels=1"  # RFC 4856
    return _MEDIA_TYPES[name]


def _bit_rate(name: str, rate: int) -> int | None:
    table = {"mp3": (_MP3_BIT_RATE, 64_000), "opus": (_OPUS_BIT_RATE, 32_000), "aac": (_AAC_BIT_RATE, 64_000)}
    if name not in table:
        return None
    by_rate, default = table[name]
    return by_rate.get(rate, default)


def _make_encoder(fmt: AudioFormat, whole: bool) -> Encoder:
    rate = fmt.sample_rate
    if fmt.name == "pcm":
        return PcmEncoder()
    if fmt.name == "mulaw":
        return G711Encoder("mulaw", rate)
    if fmt.name == "alaw":
        return G711Encoder("alaw", rate)
    if fmt.name == "wav":
        return WavEncoder("pcm_s16le", rate, whole)
    if fmt.name in ("mulaw_wav", "alaw_wav"):
        return WavEncoder("mulaw" if fmt.name == "mulaw_wav" else "alaw", rate, whole)
    if fmt.name == "mp3":
        # No ID3v2 tag: nothing to say in it, and a stream should start with audio frames.
        spec = MuxSpec("mp3", "libmp3lame", "fltp", fmt.bit_rate, container_options={"id3v2_version": "0"})
    elif fmt.name == "opus":
        page = {"page_duration": str(OGG_PAGE_DURATION_US)}
        # Constrained VBR: near the target on every signal (free VBR doubles it on tonal sounds).
        vbr = {"vbr": "constrained"}
        spec = MuxSpec("ogg", "libopus", "flt", fmt.bit_rate, codec_options=vbr, container_options=page)
    elif fmt.name == "flac":
        # No 8 KiB PADDING block: it only serves later in-place tag edits, and delays the first audio.
        spec = MuxSpec("flac", "flac", "s16", container_options={"metadata_header_padding": "0"})
    elif fmt.name == "aac":
        spec = MuxSpec("adts", "aac", "fltp", fmt.bit_rate)
    else:  # pragma: no cover - parse_format only makes the names above
        raise ValueError(f"no encoder for {fmt.name!r}")
    return MuxedEncoder(spec, rate, whole)


class StreamEncoder:
    """Encodes one response's audio chunk by chunk; `encode` returns the bytes ready to send.

    Chunks are float32 mono at `input_rate` (any length, including 0). Call `finish()` once at the
    end for the flushed remainder and trailer, or `close()` to drop a stream that will not finish
    (client gone). Not thread-safe: one encoder belongs to one response.

    What the first `encode` returns: pcm, G.711 and wav - every sample (wav: the header first);
    opus and flac - the container header at once, then whole Opus packets / FLAC blocks; mp3 and aac
    - nothing until the encoder's look-ahead is full (~100-150 ms at 24 kHz). Resampling holds back
    the filter's delay (~20-70 ms). The module docstring has the measured numbers.
    """

    def __init__(self, fmt: AudioFormat, input_rate: int = ENGINE_SAMPLE_RATE) -> None:
        self._setup(fmt, input_rate, whole=False)

    def _setup(self, fmt: AudioFormat, input_rate: int, whole: bool) -> None:
        if isinstance(input_rate, bool) or int(input_rate) != input_rate or input_rate <= 0:
            raise ValueError(f"input_rate must be a positive whole number of Hz, got {input_rate!r}")
        self.format = fmt
        self.input_rate = int(input_rate)
        self._resampler: soxr.ResampleStream | None = None
        if self.input_rate != fmt.sample_rate:
            self._resampler = soxr.ResampleStream(
                self.input_rate, fmt.sample_rate, 1, dtype="float32", quality=RESAMPLER_QUALITY
            )
        self._encoder = _make_encoder(fmt, whole)
        self._state = "open"  # -> "finished" | "closed"

    def encode(self, audio: np.ndarray) -> bytes:
        """Encode the next chunk; returns whatever bytes are ready (possibly b"")."""
        if self._state != "open":
            raise RuntimeError(f"encode() after the stream was {self._state}")
        samples = _clean(audio)
        if self._resampler is not None:
            samples = _clip(self._resampler.resample_chunk(samples))
        return self._encoder.encode(samples)

    def finish(self) -> bytes:
        """Flush the resampler and the encoder; returns the last bytes (a whole file's: all of it)."""
        if self._state == "finished":
            return b""
        if self._state == "closed":
            raise RuntimeError("finish() after the stream was closed")
        out = b""
        if self._resampler is not None:
            tail = _clip(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
            out = self._encoder.encode(tail)
        self._state = "finished"
        return out + self._encoder.finish()

    def close(self) -> None:
        """Drop the stream without finishing it (frees the codec); a finished one is left alone."""
        if self._state == "open":
            self._state = "closed"
            self._encoder.close()


class _WholeEncoder(StreamEncoder):
    """Makes one complete file: sizes, lengths and checksums filled in at the end."""

    def __init__(self, fmt: AudioFormat, input_rate: int = ENGINE_SAMPLE_RATE) -> None:
        self._setup(fmt, input_rate, whole=True)


def encode_whole(audio: np.ndarray, fmt: AudioFormat, input_rate: int = ENGINE_SAMPLE_RATE) -> bytes:
    """A complete file of `audio` (float32 mono at `input_rate`) in `fmt`.

    The samples equal a stream's; the headers have what only the end knows (WAV sizes, FLAC
    STREAMINFO length and MD5, MP3 Xing/LAME frame).
    """
    encoder = _WholeEncoder(fmt, input_rate)
    try:
        return encoder.encode(audio) + encoder.finish()
    finally:
        encoder.close()


def _clean(audio: np.ndarray) -> np.ndarray:
    """float32 [N] with NaN -> 0 and everything clipped to [-1, 1]."""
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim == 2 and 1 in samples.shape:
        samples = samples.reshape(-1)
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples [N], got shape {samples.shape}")
    return _clip(np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0))


def _clip(samples: np.ndarray) -> np.ndarray:
    return np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False)
