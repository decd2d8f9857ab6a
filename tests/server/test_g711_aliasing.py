"""G.711 at 8 kHz from the engine's 24 kHz: what lies above 4 kHz is filtered out before the rate
drops, so it does not fold back into the telephone band.

A 6 kHz tone sampled at 8 kHz would appear at 8 - 6 = 2 kHz. The signal is a ~1 kHz tone plus a
6 kHz tone of the same level; after encoding and decoding (FFmpeg), the 2 kHz bin must be at least
50 dB below the ~1 kHz one. The low tone is 1013 Hz, not 1000: a tone commensurate with 8 kHz makes
the G.711 quantization error periodic, with harmonics that land on (or exactly miss) 2 kHz and
measure the quantizer instead of the filter. At 1013 Hz the error is spread out like noise: the
measured margin (~59 dB) is the quantizer's noise floor; the resampler's filter is far below it.
"""

from __future__ import annotations

import numpy as np
import pytest
from server_helpers import SignalEngine, decode

from xtts_server.audio.formats import StreamEncoder, encode_whole, parse_format

RATE_IN, RATE_OUT = 24000, 8000
TONE, HIGH, ALIAS = 1013.0, 6000.0, 2000.0
REQUIRED_DB = 50.0


def two_tones(seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(RATE_IN * seconds)) / RATE_IN
    return (0.35 * np.sin(2 * np.pi * TONE * t) + 0.35 * np.sin(2 * np.pi * HIGH * t)).astype(np.float32)


def level_db(samples: np.ndarray, rate: int, freq: float, width: float = 25.0) -> float:
    """Peak level (dB) of a Hann-windowed spectrum within `width` Hz of `freq`, of the steady part
    (the first and last 0.1 s, the filter's start and end, left out)."""
    edge = int(0.1 * rate)
    steady = samples[edge:-edge].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(len(steady))))
    freqs = np.fft.rfftfreq(len(steady), 1 / rate)
    band = np.abs(freqs - freq) <= width
    return float(20 * np.log10(spectrum[band].max() + 1e-12))


def alias_margin(samples: np.ndarray) -> float:
    """How far (dB) the 2 kHz alias lies below the 1.1 kHz tone."""
    return level_db(samples, RATE_OUT, TONE) - level_db(samples, RATE_OUT, ALIAS)


@pytest.mark.parametrize("law", ["mulaw", "alaw"])
def test_the_measure_sees_aliasing(law: str) -> None:
    """Dropping every 2 of 3 samples without a filter folds the 6 kHz tone onto 2 kHz at full level:
    the measure below would catch a missing or weak filter."""
    naive = two_tones()[::3]
    fmt = parse_format(law)
    decoded = decode(encode_whole(naive, fmt, RATE_OUT), law, RATE_OUT)
    assert abs(alias_margin(decoded.samples[0])) < 3


@pytest.mark.parametrize("law", ["mulaw", "alaw", "mulaw_wav", "alaw_wav"])
def test_stream_encoder_does_not_alias(law: str) -> None:
    fmt = parse_format(law)
    assert fmt.sample_rate == RATE_OUT
    encoder = StreamEncoder(fmt, RATE_IN)
    signal = two_tones()
    data = b"".join(encoder.encode(signal[i : i + 480]) for i in range(0, len(signal), 480))
    data += encoder.finish()
    decoded = decode(data, law, RATE_OUT)
    assert decoded.sample_rate == RATE_OUT
    assert abs(decoded.length - len(signal) // 3) <= 1
    margin = alias_margin(decoded.samples[0])
    assert margin >= REQUIRED_DB, f"{law}: the 2 kHz alias is only {margin:.1f} dB down"


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("law", ["mulaw", "alaw"])
def test_route_does_not_alias(make_client, tiny_tts, law: str, stream: bool) -> None:
    """The same through POST /v1/tts: an engine stand-in yields the two tones in 100 ms chunks, as
    the engine yields speech, and the route encodes them."""
    signal = two_tones()
    client = make_client(tts_model=SignalEngine(tiny_tts, signal), default_voice="Ana Florence")
    response = client.post("/v1/tts", json={"text": "Tones.", "format": law, "stream": stream})
    assert response.status_code == 200
    assert (
        response.headers["content-type"]
        == f"audio/{'PCMU' if law == 'mulaw' else 'PCMA'}; rate=8000; channels=1"
    )
    decoded = decode(response.content, law, RATE_OUT)
    assert abs(decoded.length - len(signal) // 3) <= 1
    margin = alias_margin(decoded.samples[0])
    assert margin >= REQUIRED_DB, f"{law}: the 2 kHz alias is only {margin:.1f} dB down"
    # and the tone itself came through at its level (0.35 of full scale)
    kept = decoded.samples[0][800:-800]
    assert 0.2 < np.sqrt(2 * np.mean(kept**2)) < 0.5
