"""Choosing the next audio code from the logits, exactly as the reference's Hugging Face `generate`.

The pipeline, in HF's order: repetition penalty, the min-new-tokens stop mask, then (when sampling)
temperature, top-k, top-p; then argmax or a multinomial draw. Everything is batched over rows and stays
on the device: no host sync per token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xtts_server.errors import InvalidRequest


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.75
    top_k: int = 50  # 0 disables
    top_p: float = 0.85  # 1.0 disables
    repetition_penalty: float = 5.0  # 1.0 disables
    length_penalty: float = 1.0  # beam search only in the reference: accepted, has no effect
    do_sample: bool = True

    # Below these, logits / value overflows to inf and the draw fails (5e-324 is a valid float > 0).
    MIN_TEMPERATURE = 0.01
    MIN_REPETITION_PENALTY = 0.01

    def validate(self) -> None:
        if not (self.temperature >= self.MIN_TEMPERATURE):
            raise InvalidRequest(f"temperature must be >= {self.MIN_TEMPERATURE}, got {self.temperature}")
        if self.top_k < 0:
            raise InvalidRequest(f"top_k must be >= 0, got {self.top_k}")
        if not (0 < self.top_p <= 1):
            raise InvalidRequest(f"top_p must be in (0, 1], got {self.top_p}")
        if not (self.repetition_penalty >= self.MIN_REPETITION_PENALTY):
            raise InvalidRequest(
                f"repetition_penalty must be >= {self.MIN_REPETITION_PENALTY}, got {self.repetition_penalty}"
            )


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """HF's RepetitionPenaltyLogitsProcessor over the ids marked in `seen` [B, V] (bool): negative
    logits are multiplied, positive ones divided. In the reference the "ids" include the prompt's
    placeholder ids, so code 1 and the start token 1024 are always penalised (kept on purpose)."""
    if penalty == 1.0:
        return logits
    penalised = torch.where(logits < 0, logits * penalty, logits / penalty)
    return torch.where(seen, penalised, logits)


def top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """HF's TopK then TopP warpers (filter value -inf; ties at the k-th value kept; at least one
    token kept by top-p)."""
    neg_inf = float("-inf")
    if top_k > 0:
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, neg_inf)
    if top_p < 1.0:
        sorted_logits, sorted_idx = torch.sort(logits, descending=False, dim=-1)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative <= (1 - top_p)
        remove[..., -1:] = False  # min_tokens_to_keep = 1
        logits = logits.masked_fill(remove.scatter(-1, sorted_idx, remove), neg_inf)
    return logits


def choose_next(
    logits: torch.Tensor,
    seen: torch.Tensor,
    params: SamplingParams,
    stop_token: int,
    block_stop: torch.Tensor | bool,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """logits [B, V] (float32) -> next codes [B]. `block_stop` ([B] bool or a bool) forbids the stop
    token for rows that have not reached min_new_tokens (HF's MinNewTokensLengthLogitsProcessor)."""
    logits = apply_repetition_penalty(logits, seen, params.repetition_penalty)
    if isinstance(block_stop, torch.Tensor):
        logits[:, stop_token] = torch.where(block_stop, float("-inf"), logits[:, stop_token])
    elif block_stop:
        logits[:, stop_token] = float("-inf")
    if not params.do_sample:
        return logits.argmax(dim=-1)
    logits = top_k_top_p(logits / params.temperature, params.top_k, params.top_p)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
