"""load_audio: the reference's load_audio on real files, every kind of source, and each bad input."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf
import torch

from xtts_server.audio.io import decode_audio, load_audio
from xtts_server.audio.resample import resample
from xtts_server.errors import InvalidAudio

GOLDEN = Path(__file__).resolve().parents[1] / "parity" / "golden"


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    return dict(np.load(GOLDEN / "audio_load.npz"))


def tone(seconds: float, rate: int, hz: float = 220.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def encode(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    """samples [N] or [N, C] -> the bytes of an encoded file (soundfile)."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def encode_aac_m4a(samples: np.ndarray, rate: int) -> bytes:
    """samples [C, N] -> an AAC stream in an mp4 (m4a) container, which libsndfile cannot read."""
    buffer = io.BytesIO()
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = layout
        size = 1024
        for i in range(0, samples.shape[1], size):
            part = np.ascontiguousarray(samples[:, i : i + size])
            frame = av.AudioFrame.from_ndarray(part, format="fltp", layout=layout)
            frame.sample_rate, frame.pts = rate, i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


class ReadOnlyStream(io.RawIOBase):
    """A pipe-like binary stream that cannot seek."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# --- parity with the reference's load_audio -------------------------------------------------------


@pytest.mark.parity
def test_matches_reference_on_encoded_clips(golden: dict[str, np.ndarray]) -> None:
    """wav (stereo, 16-bit), flac (24-bit), mp3, ogg/opus, ogg/vorbis (stereo), float wav above 1."""
    for key, expected in golden.items():
        name, rate = key.split("@")
        out = load_audio(GOLDEN / name, int(rate))
        assert out.dtype == torch.float32 and out.shape == expected.shape, key
        np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-6, err_msg=key)
    loud = load_audio(GOLDEN / "audio_clip_loud_16k.wav", 22050)
    assert loud.max() == 1.0 and loud.min() == -1.0  # clipped, as the reference does


@pytest.mark.parity
def test_every_source_kind_gives_the_same_audio(golden: dict[str, np.ndarray]) -> None:
    path = GOLDEN / "audio_clip_44k.mp3"
    expected = golden["audio_clip_44k.mp3@22050"]
    data = path.read_bytes()
    with path.open("rb") as file:
        from_file = load_audio(file, 22050)
    sources: list[Any] = [
        str(path),
        path,
        data,
        bytearray(data),
        memoryview(data),
        io.BytesIO(data),
        ReadOnlyStream(data),
    ]
    for source in sources:
        np.testing.assert_array_equal(
            load_audio(source, 22050).numpy(), expected, err_msg=type(source).__name__
        )
    np.testing.assert_array_equal(from_file.numpy(), expected)


# --- decoding --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "subtype", "atol"),
    [
        ("WAV", "PCM_16", 1e-4),
        ("FLAC", "PCM_16", 1e-4),
        ("MP3", "MPEG_LAYER_III", 0.05),
        ("OGG", "OPUS", 0.05),
        ("OGG", "VORBIS", 0.05),
    ],
)
def test_decodes_common_formats(fmt: str, subtype: str, atol: float) -> None:
    rate = 48000
    samples = tone(0.5, rate)
    out = load_audio(encode(samples, rate, fmt, subtype), 22050)
    expected = resample(torch.from_numpy(samples)[None], rate, 22050)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out[0, 2000:-2000].numpy(), expected[0, 2000:-2000].numpy(), atol=atol)


def test_falls_back_to_ffmpeg_for_aac_m4a() -> None:
    rate = 44100
    samples = np.stack([tone(0.5, rate, 440.0), tone(0.5, rate, 440.0, 0.25)])
    data = encode_aac_m4a(samples, rate)
    with pytest.raises(sf.LibsndfileError):
        sf.read(io.BytesIO(data))
    wav, source_rate = decode_audio(data)
    assert source_rate == rate and wav.shape[0] == 2
    out = load_audio(data, 16000)
    assert out.shape[0] == 1 and abs(out.shape[1] - 8000) <= 2048 * 16000 // rate + 1  # + codec priming
    spectrum = np.abs(np.fft.rfft(out[0].numpy()))
    assert abs(np.argmax(spectrum) * 16000 / out.shape[1] - 440.0) < 5.0
    assert 0.2 < float(out.abs().max()) < 0.6  # mean of 0.5 and 0.25


def test_stereo_is_averaged() -> None:
    rate = 22050
    left, right = tone(0.2, rate, 220.0, 0.6), tone(0.2, rate, 330.0, 0.2)
    out = load_audio(encode(np.stack([left, right], axis=1), rate, "WAV", "FLOAT"), rate)
    np.testing.assert_array_equal(out[0].numpy(), (left + right) / 2)


def test_max_seconds_equals_truncating_the_full_clip() -> None:
    rate = 44100
    data = encode(tone(1.0, rate) + tone(1.0, rate, 1234.0, 0.1), rate, "FLAC", "PCM_24")
    full = load_audio(data, 22050)
    part = load_audio(data, 22050, max_seconds=0.25)
    assert part.shape == (1, 5512)
    np.testing.assert_allclose(part.numpy(), full[:, :5512].numpy(), rtol=0, atol=1e-6)


# --- raw samples -----------------------------------------------------------------------------------


def test_arrays_in_every_layout() -> None:
    rate = 16000
    mono = tone(0.1, rate)
    stereo = np.stack([mono, 0.5 * mono])  # [2, N]
    expected_mono = resample(torch.from_numpy(mono)[None], rate, 22050)
    expected_stereo = resample(torch.from_numpy(stereo).mean(dim=0, keepdim=True), rate, 22050)
    torch.testing.assert_close(load_audio(mono, 22050, source_sample_rate=rate), expected_mono)
    torch.testing.assert_close(load_audio(stereo, 22050, source_sample_rate=rate), expected_stereo)
    torch.testing.assert_close(load_audio(stereo.T.copy(), 22050, source_sample_rate=rate), expected_stereo)
    torch.testing.assert_close(
        load_audio(torch.from_numpy(stereo), 22050, source_sample_rate=rate), expected_stereo
    )
    half = torch.from_numpy(mono).half()
    torch.testing.assert_close(
        load_audio(half, rate, source_sample_rate=rate), half.float()[None], rtol=0, atol=0
    )


def test_integer_arrays_are_scaled_to_full_scale() -> None:
    pcm16 = np.array([0, 16384, -32768, 32767] * 100, dtype=np.int16)
    out = load_audio(pcm16, 8000, source_sample_rate=8000)
    np.testing.assert_array_equal(out[0, :4].numpy(), np.array([0.0, 0.5, -1.0, 32767 / 32768], np.float32))
    pcm8 = np.array([128, 192, 0, 255] * 100, dtype=np.uint8)
    out = load_audio(pcm8, 8000, source_sample_rate=8000)
    np.testing.assert_array_equal(out[0, :4].numpy(), np.array([0.0, 0.5, -1.0, 127 / 128], np.float32))
    pcm32 = torch.tensor([0, 2**30, -(2**31)] * 100, dtype=torch.int32)
    out = load_audio(pcm32, 8000, source_sample_rate=8000)
    np.testing.assert_array_equal(out[0, :3].numpy(), np.array([0.0, 0.5, -1.0], np.float32))


def test_array_errors() -> None:
    ok = tone(0.1, 16000)
    with pytest.raises(ValueError, match="source_sample_rate"):
        load_audio(ok, 22050)
    with pytest.raises(InvalidAudio, match="sample rate"):
        load_audio(ok, 22050, source_sample_rate=0)
    with pytest.raises(InvalidAudio, match="channels"):
        load_audio(np.zeros((20, 30), np.float32), 22050, source_sample_rate=16000)
    with pytest.raises(InvalidAudio, match="1-D or 2-D"):
        load_audio(np.zeros((1, 2, 100), np.float32), 22050, source_sample_rate=16000)
    with pytest.raises(InvalidAudio, match="sample type"):
        load_audio(np.ones(100, np.int64), 22050, source_sample_rate=16000)
    with pytest.raises(InvalidAudio, match="zero length"):
        load_audio(np.zeros(0, np.float32), 22050, source_sample_rate=16000)
    with pytest.raises(InvalidAudio, match="NaN or infinite"):
        load_audio(np.where(np.arange(ok.size) == 7, np.inf, ok), 22050, source_sample_rate=16000)
    with pytest.raises(InvalidAudio, match="silent"):
        load_audio(np.full(1600, 5e-5, np.float32), 22050, source_sample_rate=16000)


# --- bad encoded input -----------------------------------------------------------------------------


def test_encoded_input_errors(tmp_path: Path) -> None:
    rate = 16000
    cases: list[tuple[object, str]] = [
        (b"", "empty"),
        (io.BytesIO(b""), "empty"),
        (b"RIFF....WAVEfmt not really a wav file" * 20, "could not decode"),
        (np.random.default_rng(0).bytes(5000), "could not decode"),
        (encode(np.zeros((0,), np.float32), rate, "WAV", "PCM_16"), "zero length"),
        (encode(np.zeros(rate, np.float32), rate, "WAV", "PCM_16"), "silent"),
        (encode(np.where(np.arange(rate) == 5, np.nan, tone(1.0, rate)), rate, "WAV", "FLOAT"), "NaN"),
        (str(tmp_path / "missing.wav"), "does not exist"),
        (tmp_path, "directory"),
    ]
    empty_file = tmp_path / "empty.wav"
    empty_file.write_bytes(b"")
    cases.append((empty_file, "empty"))
    for source, message in cases:
        with pytest.raises(InvalidAudio, match=message):
            load_audio(source, 22050)  # type: ignore[arg-type]


def test_video_without_audio_is_refused() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height = 32, 32
        frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with pytest.raises(InvalidAudio, match="no audio stream"):
        load_audio(buffer.getvalue(), 22050)


def test_argument_errors() -> None:
    data = encode(tone(0.1, 16000), 16000, "WAV", "PCM_16")
    with pytest.raises(ValueError, match="only for raw samples"):
        load_audio(data, 22050, source_sample_rate=16000)
    with pytest.raises(ValueError, match="sample_rate"):
        load_audio(data, 0)
    with pytest.raises(ValueError, match="max_seconds"):
        load_audio(data, 22050, max_seconds=0)
    with pytest.raises(TypeError, match="cannot read audio"):
        load_audio(1234, 22050)  # type: ignore[arg-type]
