"""Voices: the two tensors that make the model speak like someone, and cloning them from clips."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Union

import numpy as np
import torch

from xtts_server.audio.io import load_audio
from xtts_server.audio.mel import cloning_mel
from xtts_server.audio.resample import resample
from xtts_server.errors import InvalidAudio
from xtts_server.model.xtts import XTTSModel

ClipSource = Union[str, "os.PathLike[str]", bytes, IO[bytes], np.ndarray, torch.Tensor]

COND_SAMPLE_RATE = 22050  # the GPT conditioning mel's rate
SPEAKER_SAMPLE_RATE = 16000  # the speaker encoder's rate
MIN_CHUNK_SECONDS = 0.33  # the reference skips conditioning chunks shorter than this


@dataclass(frozen=True)
class Voice:
    gpt_cond_latent: torch.Tensor  # [1, 32, dim]: what the GPT reads before the text
    speaker_embedding: torch.Tensor  # [1, 512, 1]: what the vocoder is conditioned on

    def to(self, device: torch.device | str) -> Voice:
        return Voice(self.gpt_cond_latent.to(device), self.speaker_embedding.to(device))


@dataclass(frozen=True)
class CloneOptions:
    """Defaults come from config.json (gpt_cond_len 30, gpt_cond_chunk_len 4, max_ref_len 30,
    sound_norm_refs false in the release)."""

    gpt_cond_len: int = 30  # seconds of the concatenated clips used for the GPT conditioning
    gpt_cond_chunk_len: int = 4  # seconds per conditioning chunk (chunks are averaged)
    max_ref_len: int = 30  # seconds of each clip used at all
    sound_norm_refs: bool = False  # scale each clip to peak 0.75 first

    def validate(self) -> None:
        for name in ("gpt_cond_len", "gpt_cond_chunk_len", "max_ref_len"):
            if getattr(self, name) <= 0:
                raise InvalidAudio(f"{name} must be a positive number of seconds")


@torch.inference_mode()
def clone_voice(
    model: XTTSModel,
    clips: Sequence[ClipSource],
    options: CloneOptions,
    *,
    source_sample_rate: int | None = None,
) -> Voice:
    """One voice from one or more clips, as the reference's get_conditioning_latents."""
    if not clips:
        raise InvalidAudio("at least one reference clip is needed to clone a voice")
    options.validate()
    device = model.mel_stats.device
    audios, embeddings = [], []
    for i, clip in enumerate(clips):
        # max_seconds: the reference's truncation, without decoding the rest of a long upload.
        audio = load_audio(
            clip, COND_SAMPLE_RATE, source_sample_rate=source_sample_rate, max_seconds=options.max_ref_len
        ).to(device)  # [1, N]
        if audio.shape[1] < MIN_CHUNK_SECONDS * COND_SAMPLE_RATE:
            raise InvalidAudio(
                f"reference clip {i + 1} is too short: {audio.shape[1] / COND_SAMPLE_RATE:.2f} s; "
                f"use at least {MIN_CHUNK_SECONDS} s of speech (3-10 s works best)"
            )
        if options.sound_norm_refs:
            audio = audio / audio.abs().max() * 0.75
        # As the reference: the 22.05 kHz audio is resampled again to 16 kHz for the speaker encoder.
        audio_16k = resample(audio, COND_SAMPLE_RATE, SPEAKER_SAMPLE_RATE)
        embeddings.append(model.speaker_encoder(audio_16k, l2_norm=True).unsqueeze(-1))  # [1, 512, 1]
        audios.append(audio)

    full = torch.cat(audios, dim=-1)[:, : COND_SAMPLE_RATE * options.gpt_cond_len]
    step = COND_SAMPLE_RATE * options.gpt_cond_chunk_len
    latents = []
    for start in range(0, full.shape[1], step):
        chunk = full[:, start : start + step]
        if chunk.shape[1] < COND_SAMPLE_RATE * MIN_CHUNK_SECONDS:
            continue  # the reference drops a short tail chunk
        mel = cloning_mel(chunk) / model.mel_stats[None, :, None]  # [1, 80, frames]
        latents.append(model.gpt.style_latents(mel))  # [1, 32, dim]
    # Mean over chunks; speaker embeddings are averaged after their L2 norm and not renormalised.
    gpt_cond_latent = torch.stack(latents).mean(dim=0)
    speaker_embedding = torch.stack(embeddings).mean(dim=0)
    return Voice(gpt_cond_latent=gpt_cond_latent, speaker_embedding=speaker_embedding)
