"""Prompts built for many texts at once (the engine's admission) equal those built one by one."""

from __future__ import annotations

import torch


def test_batched_prompts_equal_single_prompts(tiny_tts, tiny_voice) -> None:  # type: ignore[no-untyped-def]
    gpt = tiny_tts.model.gpt
    texts = [[5, 9, 2], [7], [3, 3, 8, 1, 4, 6]]  # different lengths: right padding in the batch
    longest = max(len(t) for t in texts)
    ids = torch.zeros(len(texts), longest, dtype=torch.long)
    for i, t in enumerate(texts):
        ids[i, : len(t)] = torch.tensor(t)
    cond = torch.cat([tiny_voice.gpt_cond_latent] * len(texts))
    cond = cond + torch.arange(len(texts)).view(-1, 1, 1)  # each row its own latents
    with torch.inference_mode():
        batch = gpt.prompts(cond, ids, torch.tensor([len(t) for t in texts]))
        for i, t in enumerate(texts):
            one = gpt.prompt(cond[i : i + 1], torch.tensor([t]))[0]  # [32 + len + 3, dim]
            assert batch.shape[1] >= one.shape[0]
            torch.testing.assert_close(batch[i, : one.shape[0]], one, rtol=0, atol=0)
