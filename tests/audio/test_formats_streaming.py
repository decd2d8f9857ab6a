"""Streaming behaviour of the output formats: headers of unknown length, first bytes, Ogg pages,
resampler continuity, sample conversion and the encoder's life cycle."""

from __future__ import annotations

import io
import struct
import wave

import av
import numpy as np
import pytest
import soundfile as sf
import soxr

from xtts_server.audio.formats import (
    FORMAT_NAMES,
    SAMPLE_RATES,
    StreamEncoder,
    encode_whole,
    parse_format,
)

RATE = 24000


def tone(seconds: float, freq: float = 440.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def riff_chunks(data: bytes) -> dict[bytes, tuple[int, int]]:
    """fourcc -> (declared size, offset of the payload) of a WAV file's chunks, up to `data`."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    chunks, pos = {}, 12
    while pos + 8 <= len(data):
        fourcc, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunks[fourcc] = (size, pos + 8)
        if fourcc == b"data":
            break
        pos += 8 + size + size % 2
    return chunks


def ogg_pages(data: bytes) -> list[tuple[int, int, bytes]]:
    """(header flags, granule position, payload) of each Ogg page; asserts the bytes are whole pages."""
    pages, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 4] == b"OggS", f"no page starts at byte {pos}"
        flags, granule = data[pos + 5], struct.unpack("<q", data[pos + 6 : pos + 14])[0]
        count = data[pos + 26]
        size = sum(data[pos + 27 : pos + 27 + count])
        body_start = pos + 27 + count
        assert body_start + size <= len(data), "page cut short"
        pages.append((flags, granule, data[body_start : body_start + size]))
        pos = body_start + size
    return pages


# ---------------------------------------------------------------- WAV


@pytest.mark.parametrize(("name", "width", "tag"), [("wav", 2, 1), ("mulaw_wav", 1, 7), ("alaw_wav", 1, 6)])
def test_streamed_wav_has_open_sizes_and_every_reader_takes_it(name: str, width: int, tag: int) -> None:
    fmt = parse_format(name)
    audio = tone(0.5, rate=fmt.sample_rate)
    encoder = StreamEncoder(fmt, input_rate=fmt.sample_rate)
    first = encoder.encode(audio[:100])
    data = first + encoder.encode(audio[100:]) + encoder.finish()
    chunks = riff_chunks(data)
    header_size = chunks[b"data"][1]
    assert len(first) == header_size + 100 * width  # the header leaves with the first samples
    assert data[4:8] == b"\xff\xff\xff\xff" and chunks[b"data"][0] == 0xFFFFFFFF
    assert struct.unpack("<HHIIHH", data[20:36]) == (
        tag,
        1,
        fmt.sample_rate,
        fmt.sample_rate * width,
        width,
        8 * width,
    )
    assert b"fact" not in chunks  # the sample count is not known yet

    samples, rate = sf.read(io.BytesIO(data), dtype="int16")
    assert rate == fmt.sample_rate and samples.shape == (audio.size,)
    with av.open(io.BytesIO(data)) as container:
        decoded = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    np.testing.assert_array_equal(decoded, samples)
    # A client that stops reading part-way still has a readable file.
    partial, _ = sf.read(io.BytesIO(data[: header_size + 1000 * width]), dtype="int16")
    np.testing.assert_array_equal(partial, samples[:1000])
    if name == "wav":  # Python's wave module (PCM only) reads to the end of the bytes
        with wave.open(io.BytesIO(data)) as reader:
            assert reader.getframerate() == fmt.sample_rate and reader.getnchannels() == 1
            frames = np.frombuffer(reader.readframes(1 << 30), "<i2")
        np.testing.assert_array_equal(frames, samples)


def test_whole_wav_is_the_file_libsndfile_writes() -> None:
    audio = tone(0.3)
    ints = np.rint(audio * 32767).astype(np.int16)
    reference = io.BytesIO()
    sf.write(reference, ints, RATE, format="WAV", subtype="PCM_16")
    assert encode_whole(audio, parse_format("wav")) == reference.getvalue()


@pytest.mark.parametrize(("name", "subtype"), [("mulaw_wav", "ULAW"), ("alaw_wav", "ALAW")])
def test_whole_g711_wav_header_is_libsndfiles_and_odd_length_is_padded(name: str, subtype: str) -> None:
    audio = tone(0.1, rate=8000)[:799]  # odd: the data chunk needs a pad byte
    ours = encode_whole(audio, parse_format(name), input_rate=8000)
    reference = io.BytesIO()
    sf.write(reference, np.rint(audio * 32767).astype(np.int16), 8000, format="WAV", subtype=subtype)
    theirs = reference.getvalue()
    header = riff_chunks(ours)[b"data"][1]
    assert len(ours) == len(theirs) == header + 800
    assert ours[:header] == theirs[:header]  # fmt (18 bytes) + fact (799) + data sizes
    assert sf.info(io.BytesIO(ours)).frames == 799


def test_whole_files_know_their_length() -> None:
    audio = tone(1.0)
    assert sf.info(io.BytesIO(encode_whole(audio, parse_format("flac")))).frames == audio.size
    assert sf.info(io.BytesIO(encode_whole(audio, parse_format("wav")))).frames == audio.size
    streamed = StreamEncoder(parse_format("flac"))
    data = streamed.encode(audio) + streamed.finish()
    with av.open(io.BytesIO(data)) as container:  # STREAMINFO says "unknown" but the stream is whole
        assert sum(f.samples for f in container.decode(audio=0)) == audio.size


# ---------------------------------------------------------------- first bytes


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_bytes_leave_before_finish(name: str) -> None:
    """Fed 100 ms chunks, every format hands back decodable bytes long before the stream ends."""
    fmt = parse_format(name)
    encoder = StreamEncoder(fmt)
    audio = tone(2.0)
    sent = b""
    for i, start in enumerate(range(0, audio.size, 2400)):
        sent += encoder.encode(audio[start : start + 2400])
        if i == 2:  # after 300 ms of audio
            break
    encoder.close()
    if name in ("pcm", "mulaw", "alaw"):
        n = len(sent) // (2 if name == "pcm" else 1)
        assert n >= 0.3 * fmt.sample_rate - 600  # all but the resampler's delay (8 kHz: ~70 ms)
        return
    with av.open(io.BytesIO(sent)) as container:
        decoded = sum(f.samples for f in container.decode(audio=0))
    rate = 48000 if name == "opus" else fmt.sample_rate
    assert decoded / rate >= 0.1, f"{name}: only {decoded / rate:.3f} s of the first 0.3 s sent"


@pytest.mark.parametrize(("name", "prefix"), [("wav", b"RIFF"), ("opus", b"OggS"), ("flac", b"fLaC")])
def test_container_header_is_out_on_the_first_call(name: str, prefix: bytes) -> None:
    encoder = StreamEncoder(parse_format(name))
    assert encoder.encode(np.zeros(1, np.float32)).startswith(prefix)
    encoder.close()


def test_opus_pages_are_flushed_per_packet() -> None:
    fmt = parse_format("opus", 24000)
    encoder = StreamEncoder(fmt)
    audio = tone(1.0)
    first = encoder.encode(audio[:2400])  # 100 ms: five 20 ms packets
    pages = ogg_pages(first)
    assert pages[0][2][:8] == b"OpusHead" and pages[1][2][:8] == b"OpusTags"
    version, channels, pre_skip, input_rate = struct.unpack("<BBHI", pages[0][2][8:16])
    assert (version, channels, input_rate) == (1, 1, 24000)
    audio_pages = pages[2:]
    assert len(audio_pages) >= 3  # at most the last packet (and the encoder look-ahead) held back
    assert all(granule > 0 for _, granule, _ in audio_pages)
    rest = encoder.encode(audio[2400:]) + encoder.finish()
    pages = ogg_pages(rest)  # every call returns whole pages
    flags, granule, _ = pages[-1]
    assert flags & 0x04  # end of stream
    assert granule == pre_skip + audio.size * 48000 // RATE  # trims the padding exactly


# ---------------------------------------------------------------- resampling


@pytest.mark.parametrize("rate", [r for r in SAMPLE_RATES if r != RATE])
def test_chunked_resampling_equals_whole_signal(rate: int) -> None:
    """soxr's stream keeps its state: the joins of uneven chunks leave no trace."""
    fmt = parse_format("pcm", rate)
    rng = np.random.default_rng(rate)
    audio = (0.3 * rng.standard_normal(RATE) + tone(1.0)).clip(-1, 1).astype(np.float32)
    encoder = StreamEncoder(fmt)
    parts, start = [], 0
    for size in (1, 1000, 4801, 7, 9000):
        parts.append(encoder.encode(audio[start : start + size]))
        start += size
    parts.append(encoder.encode(audio[start:]))
    parts.append(encoder.finish())
    chunked = np.frombuffer(b"".join(parts), "<i2") / 32767.0
    whole = soxr.resample(audio, RATE, rate, quality="HQ")
    assert len(chunked) == len(whole) == round(audio.size * rate / RATE)
    assert np.abs(chunked - np.clip(whole, -1, 1)).max() < 1e-4  # int16 rounding only
    assert b"".join(parts) == encode_whole(audio, fmt)


def test_input_at_another_rate() -> None:
    audio = tone(0.5, rate=16000)
    data = encode_whole(audio, parse_format("wav", 48000), input_rate=16000)
    samples, rate = sf.read(io.BytesIO(data))
    assert rate == 48000 and len(samples) == audio.size * 3


# ---------------------------------------------------------------- samples


def test_clipping_and_nan() -> None:
    audio = np.array([2.0, -3.0, np.nan, np.inf, -np.inf, 0.5, 1.0, -1.0, 0.25], np.float32)
    data = encode_whole(audio, parse_format("pcm"))
    assert np.frombuffer(data, "<i2").tolist() == [
        32767,
        -32767,
        0,
        32767,
        -32767,
        16384,
        32767,
        -32767,
        8192,
    ]
    encoder = StreamEncoder(parse_format("pcm"))
    assert encoder.encode(audio) + encoder.finish() == data


def test_clipping_after_resampling_and_in_lossy_codecs() -> None:
    loud = np.clip(tone(0.5) * 4, -1.5, 1.5).astype(np.float32)  # a clipped square-ish wave
    samples = np.frombuffer(encode_whole(loud, parse_format("pcm", 48000)), "<i2")
    assert samples.max() == 32767 and samples.min() == -32767  # filter overshoot is clipped too
    for name in ("mp3", "aac", "opus"):
        assert encode_whole(loud, parse_format(name))  # float codecs take the clipped signal


def test_input_shapes() -> None:
    audio = tone(0.1)
    fmt = parse_format("pcm")
    assert encode_whole(audio[:, None], fmt) == encode_whole(audio[None, :], fmt) == encode_whole(audio, fmt)
    assert encode_whole(audio.astype(np.float64), fmt) == encode_whole(audio, fmt)
    with pytest.raises(ValueError, match="mono"):
        encode_whole(np.zeros((2, 100), np.float32), fmt)


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_empty_audio_still_makes_a_readable_file(name: str) -> None:
    fmt = parse_format(name)
    whole = encode_whole(np.zeros(0, np.float32), fmt)
    encoder = StreamEncoder(fmt)
    streamed = encoder.encode(np.zeros(0, np.float32)) + encoder.finish()
    for data in (whole, streamed):
        if name in ("pcm", "mulaw", "alaw"):
            assert data == b""
        elif name in ("wav", "mulaw_wav", "alaw_wav"):
            assert riff_chunks(data)[b"data"][1] == len(data)
        else:  # a codec's container gets one sample of silence, so that decoders open it
            with av.open(io.BytesIO(data)) as container:
                samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
            assert 1 <= len(samples) <= 2048 and np.abs(samples).max() < 1e-3


# ---------------------------------------------------------------- life cycle


def test_life_cycle() -> None:
    encoder = StreamEncoder(parse_format("mp3"))
    encoder.encode(tone(0.2))
    assert encoder.finish()
    assert encoder.finish() == b""
    with pytest.raises(RuntimeError, match="finished"):
        encoder.encode(tone(0.1))
    encoder.close()  # after finish: nothing to do

    dropped = StreamEncoder(parse_format("opus"))
    dropped.encode(tone(0.2))
    dropped.close()
    with pytest.raises(RuntimeError, match="closed"):
        dropped.encode(tone(0.1))
    with pytest.raises(RuntimeError, match="closed"):
        dropped.finish()


def test_bad_input_rate() -> None:
    with pytest.raises(ValueError, match="input_rate"):
        StreamEncoder(parse_format("wav"), input_rate=0)


# ---------------------------------------------------------------- with the engine


def test_engine_stream_to_bytes(tiny_tts, tiny_voice) -> None:  # type: ignore[no-untyped-def]
    """XTTS.stream's chunks (numpy float32, some possibly empty) go straight in."""
    chunks = [
        chunk.audio
        for chunk in tiny_tts.stream(
            "Hello there.", "en", tiny_voice, seed=1, stream_chunk_size=2, max_new_tokens=6
        )
    ]
    assert len(chunks) >= 3
    audio = np.concatenate(chunks)
    for name, rate in (("wav", 24000), ("opus", 48000), ("mulaw_wav", 8000)):
        fmt = parse_format(name, rate)
        encoder = StreamEncoder(fmt, input_rate=tiny_tts.sample_rate)
        sent = [encoder.encode(chunk) for chunk in chunks]
        sent.append(encoder.finish())
        assert any(sent[:-1])  # bytes leave before the end
        whole = encode_whole(audio, fmt, input_rate=tiny_tts.sample_rate)
        if name == "opus":
            assert b"".join(sent) == whole
            continue
        samples, _ = sf.read(io.BytesIO(b"".join(sent)), dtype="int16")
        assert len(samples) == round(audio.size * rate / tiny_tts.sample_rate)
        np.testing.assert_array_equal(samples, sf.read(io.BytesIO(whole), dtype="int16")[0])
