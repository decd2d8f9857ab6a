"""The single-stream decode loop: prompt in, (code, latent) pairs out, one per step.

The latent of each step (final_norm of the last hidden state) is what the vocoder needs: it equals
what the reference recomputes in a second full GPT pass, so we keep it and skip that pass. The step
that produces the stop code also yields its latent (the reference decodes it too).

The batching GPU engine has its own loop; this one is the plain reference path (CPU, tests, CLI).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from xtts_server.errors import Cancelled
from xtts_server.inference.sampling import SamplingParams, choose_next
from xtts_server.model.gpt import GPT


@dataclass(frozen=True)
class Step:
    code: int  # the sampled code; equal to the stop token on the last step when the model stopped
    latent: torch.Tensor  # [1, dim], the vocoder's input frame for this step
    is_stop: bool


@torch.inference_mode()
def generate(
    gpt: GPT,
    prompt: torch.Tensor,
    params: SamplingParams,
    *,
    max_new_tokens: int,
    min_new_tokens: int = 0,
    generator: torch.Generator | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[Step]:
    """Decode after `prompt` [1, P, dim] (from GPT.prompt) until the stop code or max_new_tokens.
    A set `cancel` event stops the loop before the next step (raising Cancelled)."""
    a = gpt.args
    device = prompt.device
    p = prompt.shape[1]
    # This request's own cache, sized to what it can use: the model holds no per-request state,
    # so several requests can decode at once.
    cache = gpt.new_cache(1, p + max_new_tokens, prompt.dtype, device)
    rows = torch.zeros(1, dtype=torch.long, device=device)

    # The reference's generate() sees placeholder ids "1" for the prefix and the start code, and
    # its repetition penalty covers every id it has seen: both are penalised from the first step.
    seen = torch.zeros(1, a.gpt_num_audio_tokens, dtype=torch.bool, device=device)
    seen[0, 1] = True
    seen[0, a.gpt_start_audio_token] = True

    hidden = gpt(prompt, torch.arange(p, device=device)[None], cache, rows, attend_len=p)[:, -1]  # [1, dim]
    for k in range(max_new_tokens):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        latent = gpt.latents(hidden)
        logits = gpt.logits(latent).float()
        code_t = choose_next(logits, seen, params, a.gpt_stop_audio_token, k < min_new_tokens, generator)
        code = int(code_t.item())
        is_stop = code == a.gpt_stop_audio_token
        yield Step(code=code, latent=latent, is_stop=is_stop)
        if is_stop or k + 1 == max_new_tokens:
            return
        seen[0, code] = True
        emb = gpt.audio_embedding(code_t[:, None], torch.full((1, 1), k + 1, device=device))
        pos = p + k  # the k-th code (0-based) goes right after the prompt
        hidden = gpt(emb, torch.full((1, 1), pos, device=device), cache, rows, attend_len=pos + 1)[:, -1]
