"""Record the reference's vocoder, speaker encoder and audio front-end outputs as golden files.

Run in the oracle venv (coqui-tts 0.28.0, torch 2.9.1, torchaudio 2.9.1):
    PYTHONPATH=/work/main/src /work/oracle/venv/bin/python scripts/parity/make_audio_golden.py

Writes tests/parity/golden/audio_*.npz (and a few small encoded clips, audio_clip_*). Nothing from
xtts_server is imported: every number comes from the reference.

- audio_hifigan_tiny.npz: a small HifiDecoder (16-d latents, 32 channels, 8-d speaker embedding)
  with random weights, stored in the reference's weight-norm format (`w.<key>`), its upsampled
  latents and outputs for batch 2 and batch 1.
- audio_hifigan_full.npz / audio_speaker_encoder.npz: release-sized modules whose weights are made by
  `seeded_weights` (numpy PCG64 seeded per key name; the tests make the same weights) so they need
  not be stored; inputs, outputs and the state_dict keys and shapes.
- audio_resample.npz: torchaudio.functional.resample for several rate pairs.
- audio_mel.npz: the cloning log-mel (`wav_to_mel_cloning` with unit mel norms) and the speaker
  encoder's mel filterbank.
- audio_load.npz + audio_clip_*: the reference's `load_audio` on small encoded clips. torchcodec
  cannot load FFmpeg in the oracle venv, so torchaudio.load is replaced there by a soundfile reader
  (what torchaudio.load returns: float32 [C, N] and the rate); the rest is the reference's code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

GOLDEN = Path(__file__).resolve().parents[2] / "tests" / "parity" / "golden"
sys.path.insert(0, str(GOLDEN.parent))
from seeded_weights import seeded_weights  # noqa: E402

HIFIGAN_SEED = 1234
SPEAKER_SEED = 5678


def voice_like(rng: np.random.Generator, seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    """A harmonic tone with vibrato plus noise, peak about 0.5: float32 [C, N]."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    out = []
    for c in range(channels):
        f0 = 110.0 * (1.3**c) * (1.0 + 0.02 * np.sin(2 * np.pi * 5.0 * t))
        phase = 2 * np.pi * np.cumsum(f0) / rate
        tone = sum(np.sin(k * phase) / k for k in range(1, 12))
        noise = rng.normal(0.0, 0.05, n)
        out.append(0.2 * tone + noise)
    return np.stack(out).astype(np.float32)


def shapes_of(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def hifigan_golden() -> None:
    from TTS.tts.layers.xtts.hifigan_decoder import HifiDecoder

    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    # tiny: weights stored
    tiny = HifiDecoder(decoder_input_dim=16, upsample_initial_channel_decoder=32, d_vector_dim=8).eval()
    weights = seeded_weights(shapes_of(tiny.waveform_decoder.state_dict()), HIFIGAN_SEED + 1)
    tiny.waveform_decoder.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    lat2 = rng.normal(0.0, 1.0, (2, 7, 16)).astype(np.float32)
    g2 = rng.normal(0.0, 0.5, (2, 8, 1)).astype(np.float32)
    lat1 = rng.normal(0.0, 1.0, (1, 5, 16)).astype(np.float32)
    g1 = rng.normal(0.0, 0.5, (1, 8, 1)).astype(np.float32)
    with torch.no_grad():
        z2 = torch.nn.functional.interpolate(
            torch.from_numpy(lat2).transpose(1, 2), scale_factor=[4.0], mode="linear"
        )
        z2 = torch.nn.functional.interpolate(z2, scale_factor=[24000 / 22050], mode="linear")
        out2 = tiny(torch.from_numpy(lat2), g=torch.from_numpy(g2))
        out1 = tiny(torch.from_numpy(lat1), g=torch.from_numpy(g1))
    np.savez_compressed(
        GOLDEN / "audio_hifigan_tiny.npz",
        config=json.dumps({"decoder_input_dim": 16, "upsample_initial_channel": 32, "d_vector_dim": 8}),
        latents_b2=lat2,
        g_b2=g2,
        z_b2=z2.numpy(),
        out_b2=out2.numpy(),
        latents_b1=lat1,
        g_b1=g1,
        out_b1=out1.numpy(),
        **{f"w.{k}": v for k, v in weights.items()},
    )
    print("tiny hifigan", out2.shape, float(out2.abs().max()), float(out2.std()))

    # release size: weights from the seed
    full = HifiDecoder().eval()
    shapes = shapes_of(full.waveform_decoder.state_dict())
    weights = seeded_weights(shapes, HIFIGAN_SEED)
    full.waveform_decoder.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    lat = rng.normal(0.0, 1.0, (1, 6, 1024)).astype(np.float32)
    g = rng.normal(0.0, 1.0, (1, 512, 1)).astype(np.float32)
    g /= np.linalg.norm(g)  # an L2-normalised speaker embedding, as the release feeds it
    with torch.no_grad():
        out = full(torch.from_numpy(lat), g=torch.from_numpy(g))
    np.savez_compressed(
        GOLDEN / "audio_hifigan_full.npz",
        seed=HIFIGAN_SEED,
        shapes=json.dumps(shapes),
        latents=lat,
        g=g,
        out=out.numpy(),
    )
    print("full hifigan", out.shape, float(out.abs().max()), float(out.std()))


def speaker_encoder_golden() -> None:
    from TTS.tts.layers.xtts.hifigan_decoder import HifiDecoder

    encoder = HifiDecoder().speaker_encoder.eval()
    state = encoder.state_dict()
    shapes = shapes_of(state)
    random_shapes = {k: v for k, v in shapes.items() if not k.startswith("torch_spec.")}
    weights = seeded_weights(random_shapes, SPEAKER_SEED)
    encoder.load_state_dict({**state, **{k: torch.from_numpy(v) for k, v in weights.items()}})
    rng = np.random.default_rng(2)
    wav = np.concatenate([voice_like(rng, 1.5, 16000), 0.5 * voice_like(rng, 1.5, 16000)])  # [2, 24000]
    with torch.no_grad():
        emb = encoder(torch.from_numpy(wav).clone(), l2_norm=True)
        raw = encoder(torch.from_numpy(wav).clone(), l2_norm=False)
        mel = encoder.torch_spec(torch.from_numpy(wav[:1]))
        features = encoder.instancenorm((mel + 1e-6).log())
    np.savez_compressed(
        GOLDEN / "audio_speaker_encoder.npz",
        seed=SPEAKER_SEED,
        shapes=json.dumps(shapes),
        wav=wav,
        emb=emb.numpy(),
        emb_raw=raw.numpy(),
        features0=features.numpy(),
        filter=state["torch_spec.0.filter"].numpy(),
        window=state["torch_spec.1.spectrogram.window"].numpy(),
        fb=state["torch_spec.1.mel_scale.fb"].numpy(),
    )
    print("speaker encoder", emb.shape, raw.norm(dim=1).tolist(), float(features.std()))


RATE_PAIRS = [
    (44100, 22050),
    (48000, 22050),
    (16000, 22050),
    (22050, 16000),
    (8000, 22050),
    (24000, 22050),
    (11025, 22050),
    (32000, 22050),
    (96000, 22050),
    (44100, 16000),
    (22050, 24000),
    (12345, 16000),  # gcd 5: a filter of 7.9 M elements (our banded path)
]


def resample_golden() -> None:
    rng = np.random.default_rng(3)
    arrays: dict[str, np.ndarray] = {"pairs": np.array(RATE_PAIRS)}
    for i, (orig, new) in enumerate(RATE_PAIRS):
        length = int(orig * 0.05) + 7 * i + 1  # 50 ms, odd lengths
        wav = voice_like(rng, length / orig, orig, channels=1 + i % 2)[:, :length]
        arrays[f"in_{i}"] = wav
        arrays[f"out_{i}"] = torchaudio.functional.resample(torch.from_numpy(wav), orig, new).numpy()
    wav64 = rng.normal(0.0, 0.3, (1, 999))
    arrays["in_f64"] = wav64
    arrays["out_f64"] = torchaudio.functional.resample(torch.from_numpy(wav64), 44100, 16000).numpy()
    np.savez_compressed(GOLDEN / "audio_resample.npz", **arrays)
    print("resample", {k: v.shape for k, v in arrays.items() if k.startswith("out")})


def mel_golden() -> None:
    from TTS.tts.models.xtts import wav_to_mel_cloning

    rng = np.random.default_rng(4)
    arrays: dict[str, np.ndarray] = {}
    for i, seconds in enumerate((0.5, 0.3371)):
        wav = voice_like(rng, seconds, 22050)  # [1, N]
        if i == 1:
            wav[:, 1000:2000] = 0.0  # a silent stretch exercises the 1e-5 floor
        mel = wav_to_mel_cloning(
            torch.from_numpy(wav),
            mel_norms=torch.ones(80),
            n_fft=2048,
            hop_length=256,
            win_length=1024,
            power=2,
            normalized=False,
            sample_rate=22050,
            f_min=0,
            f_max=8000,
            n_mels=80,
        )
        arrays[f"wav_{i}"] = wav
        arrays[f"mel_{i}"] = mel.numpy()
    fb = torchaudio.functional.melscale_fbanks(1025, 0.0, 8000.0, 80, 22050, "slaney")
    arrays["cloning_fb_sum"] = fb.sum(dim=0).numpy()  # per band, instead of the 330 kB matrix
    arrays["cloning_fb_rows"] = fb[::16].numpy()
    np.savez_compressed(GOLDEN / "audio_mel.npz", **arrays)
    print("mel", {k: v.shape for k, v in arrays.items()})


CLIPS = [
    # name, rate, channels, seconds, soundfile format, subtype
    ("audio_clip_stereo_44k.wav", 44100, 2, 0.4, "WAV", "PCM_16"),
    ("audio_clip_48k.flac", 48000, 1, 0.4, "FLAC", "PCM_24"),
    ("audio_clip_44k.mp3", 44100, 1, 0.5, "MP3", "MPEG_LAYER_III"),
    ("audio_clip_48k.opus", 48000, 1, 0.5, "OGG", "OPUS"),
    ("audio_clip_32k_stereo.ogg", 32000, 2, 0.5, "OGG", "VORBIS"),
    ("audio_clip_loud_16k.wav", 16000, 1, 0.2, "WAV", "FLOAT"),  # peaks above 1: clipped
]


def _soundfile_load(path: str, *args: object, **kwargs: object) -> tuple[torch.Tensor, int]:
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    return torch.from_numpy(np.ascontiguousarray(data.T)), rate


def load_golden() -> None:
    import TTS.tts.models.xtts as xtts

    xtts.torchaudio.load = _soundfile_load  # torchcodec has no FFmpeg here; see the module docstring
    rng = np.random.default_rng(5)
    arrays: dict[str, np.ndarray] = {}
    for name, rate, channels, seconds, fmt, subtype in CLIPS:
        wav = voice_like(rng, seconds, rate, channels)
        if "loud" in name:
            wav *= 3.0
        sf.write(GOLDEN / name, wav.T, rate, format=fmt, subtype=subtype)
        for target in (22050, 16000):
            arrays[f"{name}@{target}"] = xtts.load_audio(str(GOLDEN / name), target).numpy()
    np.savez_compressed(GOLDEN / "audio_load.npz", **arrays)
    print("load", {k: v.shape for k, v in arrays.items()})


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    hifigan_golden()
    speaker_encoder_golden()
    resample_golden()
    mel_golden()
    load_golden()
    for path in sorted(GOLDEN.glob("audio_*")):
        print(f"{path.name}: {path.stat().st_size / 1024:.1f} kB")


if __name__ == "__main__":
    main()
