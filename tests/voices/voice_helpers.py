"""Small real tensors shaped like voices, for store tests that need no model."""

from __future__ import annotations

import torch

from xtts_server.inference.voice import Voice
from xtts_server.voices import ModelSignature

WIDTH = 16
SIGNATURE = ModelSignature("test-model width=16", (1, 32, WIDTH), (1, 512, 1))


def make_voice(seed: int, width: int = WIDTH) -> Voice:
    gen = torch.Generator().manual_seed(seed)
    return Voice(torch.randn(1, 32, width, generator=gen), torch.randn(1, 512, 1, generator=gen))


def same_voice(a: Voice, b: Voice) -> bool:
    return torch.equal(a.gpt_cond_latent.cpu(), b.gpt_cond_latent.cpu()) and torch.equal(
        a.speaker_embedding.cpu(), b.speaker_embedding.cpu()
    )
