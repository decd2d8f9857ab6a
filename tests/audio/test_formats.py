"""Output formats: request parsing, and every format whole and streamed, decoded back and compared.

Decoders are FFmpeg (PyAV) and libsndfile (soundfile); the expected signal is the input resampled
by soxr in one go, so these tests also check the streaming resampler against the whole-signal one.
"""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
import soundfile as sf
import soxr

from xtts_server.audio.formats import (
    FORMAT_NAMES,
    OPUS_SAMPLE_RATES,
    SAMPLE_RATES,
    AudioFormat,
    StreamEncoder,
    encode_whole,
    parse_format,
)
from xtts_server.errors import InvalidRequest

ENGINE_RATE = 24000
CHUNKS = (1, 1000, 0, 4801, 24000)  # uneven, with an empty one; the rest of the signal follows
LOSSLESS = ("pcm", "wav", "flac")
G711 = ("mulaw", "alaw", "mulaw_wav", "alaw_wav")
LOSSY = ("mp3", "opus", "aac")

CASES = [
    *(("pcm", r) for r in SAMPLE_RATES),
    ("wav", 24000),
    ("wav", 8000),
    ("wav", 44100),
    ("flac", 24000),
    ("flac", 22050),
    ("flac", 48000),
    ("mp3", 24000),
    ("mp3", 8000),
    ("mp3", 44100),
    ("mp3", 48000),
    *(("opus", r) for r in OPUS_SAMPLE_RATES),
    ("aac", 24000),
    ("aac", 8000),
    ("aac", 44100),
    *((name, 8000) for name in G711),
]


def sweep(seconds: float = 1.5, rate: int = ENGINE_RATE) -> np.ndarray:
    """A sine sweep 100 Hz -> 3.1 kHz at half scale: below every output rate's Nyquist."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * (100 + 1000 * t) * t)).astype(np.float32)


def stream(
    fmt: AudioFormat, audio: np.ndarray, chunks: tuple[int, ...] = CHUNKS
) -> tuple[bytes, list[bytes]]:
    encoder = StreamEncoder(fmt)
    parts, start = [], 0
    for size in (*chunks, audio.size):
        parts.append(encoder.encode(audio[start : start + size]))
        start += size
    parts.append(encoder.finish())
    return b"".join(parts), parts


def decode(data: bytes, fmt: AudioFormat) -> tuple[np.ndarray, int]:
    """Decoded float samples [N] in [-1, 1] (int formats scaled by 1/32767) and their rate."""
    if fmt.name == "pcm":
        return np.frombuffer(data, "<i2") / 32767.0, fmt.sample_rate
    if fmt.name in ("mulaw", "alaw"):
        samples, rate = sf.read(
            io.BytesIO(data), format="RAW", subtype="ULAW" if fmt.name == "mulaw" else "ALAW",
            samplerate=fmt.sample_rate, channels=1, dtype="int16",
        )  # fmt: skip
        return samples / 32767.0, rate
    with av.open(io.BytesIO(data)) as container:
        stream_ = container.streams.audio[0]
        assert stream_.codec_context.channels == 1
        frames = [frame.to_ndarray() for frame in container.decode(stream_)]
        rate = stream_.codec_context.sample_rate
    if not frames:
        return np.zeros(0), rate
    samples = np.concatenate(frames, axis=1)  # [1, N]
    assert samples.shape[0] == 1
    if samples.dtype == np.int16:
        return samples[0] / 32767.0, rate
    if samples.dtype == np.int32:  # FLAC may decode to s32 with the 16 bits at the top
        return samples[0] / 65536.0 / 32767.0, rate
    return samples[0].astype(np.float64), rate


def expected(audio: np.ndarray, rate: int) -> np.ndarray:
    return np.clip(soxr.resample(audio, ENGINE_RATE, rate, quality="HQ"), -1, 1).astype(np.float64)


def spectral_similarity(a: np.ndarray, b: np.ndarray, size: int = 512) -> float:
    """Correlation of two signals' STFT magnitudes: how a perceptual codec is judged (Opus in
    SILK/hybrid mode keeps the spectrum of a sweep, not its waveform)."""
    n = min(len(a), len(b))

    def magnitudes(x: np.ndarray) -> np.ndarray:
        frames = np.lib.stride_tricks.sliding_window_view(x[:n], size)[:: size // 2] * np.hanning(size)
        return np.abs(np.fft.rfft(frames, axis=1))

    return float(np.corrcoef(magnitudes(a).ravel(), magnitudes(b).ravel())[0, 1])


def best_lag(decoded: np.ndarray, reference: np.ndarray, max_lag: int = 4000) -> tuple[int, float]:
    """The delay of `reference` inside `decoded`, and their correlation coefficient there."""
    size = 1 << int(np.ceil(np.log2(len(decoded) + len(reference))))
    cross = np.fft.irfft(np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(reference, size)), size)
    lag = int(np.argmax(cross[: max_lag + 1]))
    a = decoded[lag : lag + len(reference)]
    b = reference[: len(a)]
    return lag, float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


# ---------------------------------------------------------------- parse_format


def test_defaults_media_types_and_extensions() -> None:
    table = {name: parse_format(name) for name in FORMAT_NAMES}
    assert {n: f.sample_rate for n, f in table.items()} == {
        "pcm": 24000, "wav": 24000, "mp3": 24000, "opus": 24000, "flac": 24000, "aac": 24000,
        "mulaw": 8000, "alaw": 8000, "mulaw_wav": 8000, "alaw_wav": 8000,
    }  # fmt: skip
    assert table["pcm"].media_type == "audio/pcm; rate=24000; channels=1; format=s16le"
    assert parse_format("pcm", 8000).media_type == "audio/pcm; rate=8000; channels=1; format=s16le"
    assert table["wav"].media_type == table["mulaw_wav"].media_type == "audio/wav"
    assert table["mp3"].media_type == "audio/mpeg"
    assert table["opus"].media_type == "audio/ogg; codecs=opus"
    assert table["flac"].media_type == "audio/flac"
    assert table["aac"].media_type == "audio/aac"
    assert table["mulaw"].media_type == "audio/PCMU; rate=8000; channels=1"
    assert table["alaw"].media_type == "audio/PCMA; rate=8000; channels=1"
    assert table["opus"].extension == "opus" and table["mulaw_wav"].extension == "wav"
    assert table["pcm"].bit_rate is None and table["flac"].bit_rate is None
    assert all(table[name].bit_rate for name in LOSSY)


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("PCM_S16LE", "pcm"), ("s16le", "pcm"), ("Wave", "wav"), (" MP3 ", "mp3"),
        ("ogg_opus", "opus"), ("ogg", "opus"), ("adts", "aac"), ("ulaw", "mulaw"),
        ("mu-law", "mulaw"), ("g711_ulaw", "mulaw"), ("PCMA", "alaw"), ("a-law", "alaw"),
        ("ulaw_wav", "mulaw_wav"), ("wav_alaw", "alaw_wav"),
    ],
)  # fmt: skip
def test_aliases(alias: str, name: str) -> None:
    assert parse_format(alias).name == name


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(InvalidRequest) as error:
        parse_format("vorbis")
    message = str(error.value)
    assert "'vorbis'" in message
    assert all(name in message for name in FORMAT_NAMES)


@pytest.mark.parametrize(
    ("name", "rate", "choices"),
    [
        ("opus", 44100, "8000, 12000, 16000, 24000, 48000"),
        ("opus", 22050, "8000, 12000, 16000, 24000, 48000"),
        ("mulaw", 16000, "8000"),
        ("alaw_wav", 24000, "8000"),
        ("pcm", 11025, "8000, 16000, 22050, 24000, 44100, 48000"),
        ("mp3", 96000, "8000, 16000, 22050, 24000, 44100, 48000"),
    ],
)
def test_rate_not_available_lists_the_choices(name: str, rate: int, choices: str) -> None:
    with pytest.raises(
        InvalidRequest, match=rf"{rate} Hz is not available for {name}; choose one of {choices}"
    ):
        parse_format(name, rate)


@pytest.mark.parametrize("rate", [24000.5, "24000", True, -8000, 0])
def test_rate_must_be_a_whole_number(rate: object) -> None:
    with pytest.raises(InvalidRequest):
        parse_format("wav", rate)  # type: ignore[arg-type]


def test_numpy_integer_rate_accepted() -> None:
    assert parse_format("wav", np.int64(16000)).sample_rate == 16000  # type: ignore[arg-type]


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize(("name", "rate"), CASES)
def test_round_trip_whole_and_streamed(name: str, rate: int) -> None:
    fmt = parse_format(name, rate)
    audio = sweep()
    ref = expected(audio, rate)
    whole = encode_whole(audio, fmt)
    streamed, _ = stream(fmt, audio)
    for data in (whole, streamed):
        decoded, decoded_rate = decode(data, fmt)
        if name == "opus":
            assert decoded_rate == 48000  # Opus always decodes at 48 kHz
            ref48 = expected(audio, 48000)
            assert len(decoded) == len(ref48)  # Ogg granules trim the encoder's delay and padding
            assert best_lag(decoded, ref48)[0] == 0
            assert spectral_similarity(decoded, ref48) > 0.98
            continue
        assert decoded_rate == rate
        if name in LOSSLESS:
            # Equal to the whole signal resampled at once, up to the int16 rounding of float32 products.
            assert len(decoded) == len(ref)
            assert np.abs(np.rint(decoded * 32767) - np.rint(ref * 32767)).max() <= 1
        elif name in G711:
            assert len(decoded) == len(ref)
            assert np.abs(decoded - ref).max() < 660 / 32767  # the largest µ-law/A-law step / 2, and clip
            assert np.abs(decoded - ref).mean() < 0.005
        else:
            lag, corr = best_lag(decoded, ref)
            assert corr > 0.98
            if name == "aac":  # ADTS cannot say how much priming to drop: 1024 samples + padding
                assert lag == 1024 and 0 <= len(decoded) - len(ref) - 1024 <= 1024
            elif data is whole:  # mp3: the Xing/LAME frame tells the decoder to trim delay and padding
                assert lag == 0 and len(decoded) == len(ref)
            else:  # a bare MP3 stream keeps LAME's 1105-sample delay and its last frame's padding
                assert lag == 1105 and 0 <= len(decoded) - len(ref) - 1105 <= 1152


@pytest.mark.parametrize(("name", "rate"), CASES)
def test_stream_equals_whole(name: str, rate: int) -> None:
    """Streaming changes only what a header can say up front, never the samples."""
    fmt = parse_format(name, rate)
    audio = sweep()
    whole = encode_whole(audio, fmt)
    streamed, _ = stream(fmt, audio)
    if name in ("pcm", "mulaw", "alaw", "aac", "opus"):
        assert streamed == whole
    elif name == "mp3":
        assert whole.endswith(streamed) and len(whole) - len(streamed) < 1000  # + the Xing/LAME frame
    else:  # wav, G.711 wav, flac: the same samples
        a, _ = decode(whole, fmt)
        b, _ = decode(streamed, fmt)
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["wav", "flac", "opus", "mp3", "mulaw_wav", "alaw_wav"])
def test_soundfile_reads_whole_and_streamed(name: str) -> None:
    fmt = parse_format(name)
    audio = sweep()
    n = round(audio.size * fmt.sample_rate / ENGINE_RATE)
    # libsndfile takes a FLAC stream's "length unknown" (0 in STREAMINFO) for 2**63 frames and fails
    # to read it to the end; FFmpeg (above) reads it. Whole FLAC files have the length.
    candidates = [encode_whole(audio, fmt)] + ([] if name == "flac" else [stream(fmt, audio)[0]])
    for data in candidates:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32")
        assert samples.ndim == 1 and rate == fmt.sample_rate
        if name == "mp3":
            assert n <= len(samples) <= n + 1105 + 1152
            assert best_lag(samples.astype(np.float64), expected(audio, fmt.sample_rate))[1] > 0.98
        else:
            assert len(samples) == n


def test_opus_decodes_alike_in_libopus_and_ffmpeg() -> None:
    """FFmpeg's own Opus decoder and libopus (via libsndfile) must agree on what we send."""
    audio = sweep()
    for rate in OPUS_SAMPLE_RATES:
        fmt = parse_format("opus", rate)
        data = encode_whole(audio, fmt)
        ffmpeg, _ = decode(data, fmt)
        libopus, libopus_rate = sf.read(io.BytesIO(data), dtype="float64")
        assert libopus_rate == rate  # libsndfile decodes at the OpusHead's input rate
        assert len(libopus) == round(audio.size * rate / ENGINE_RATE)
        assert best_lag(libopus, expected(audio, rate))[0] == 0
        assert spectral_similarity(libopus, expected(audio, rate)) > 0.98
        assert spectral_similarity(ffmpeg, expected(audio, 48000)) > 0.98
        # FFmpeg's own SILK decoder got 8 kHz Opus at 16 kb/s badly wrong; at our rates both agree.
        assert spectral_similarity(soxr.resample(ffmpeg, 48000, rate), libopus) > 0.98


def test_g711_agrees_with_libsndfile() -> None:
    """An independent G.711 encoder (libsndfile) makes the same bytes for nearly every sample."""
    levels = np.linspace(-1, 1, 20001, dtype=np.float32)
    for name, subtype in (("mulaw", "ULAW"), ("alaw", "ALAW")):
        ours = np.frombuffer(encode_whole(levels, parse_format(name), input_rate=8000), np.uint8)
        buffer = io.BytesIO()
        sf.write(buffer, np.rint(levels * 32767).astype(np.int16), 8000, format="RAW", subtype=subtype)
        theirs = np.frombuffer(buffer.getvalue(), np.uint8)
        # They differ only on the rounding of 16-bit values that sit on a step boundary.
        assert len(ours) == len(theirs) and np.mean(ours != theirs) < 0.02
