"""Choosing the next code for every row of a batch at once, each row with its own parameters.

Same pipeline and order as the single-stream `inference.sampling` (Hugging Face's processors:
repetition penalty, min-new-tokens stop mask, temperature, top-k, top-p, then argmax or a draw), but
every parameter is a per-row tensor, so one CUDA graph serves any mix of requests.

The draw uses the exponential-race form of a categorical sample (argmax of p / E with E ~ Exp(1),
as torch.multinomial itself does on CUDA), with E from a counter-based hash of (seed, step, code).
So a request's codes depend only on its own seed and logits, not on which other streams share its
batch or when it joined: batched equals unbatched, and a seed reproduces a stream.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

_MASK32 = 0xFFFFFFFF


def _pcg(x: torch.Tensor) -> torch.Tensor:
    """PCG-RXS-M-XS hash of 32-bit values held in int64 (products stay below 2**63)."""
    state = (x * 747796405 + 2891336453) & _MASK32
    word = ((state >> ((state >> 28) + 4)) ^ state) * 277803737 & _MASK32
    return (word >> 22) ^ word


def exponential_noise(seed: torch.Tensor, step: torch.Tensor, vocab: int) -> torch.Tensor:
    """E ~ Exp(1) for every (row, code): seed [B] and step [B] int64 -> [B, vocab] float32."""
    row = _pcg((seed + _pcg(step & _MASK32)) & _MASK32)  # [B]
    code = torch.arange(vocab, device=seed.device, dtype=torch.int64) * 0x9E3779B1 & _MASK32
    bits = _pcg(row[:, None] ^ code[None])  # [B, V] uniform 32-bit
    uniform = (bits.to(torch.float64) + 0.5) * (1.0 / 2**32)  # (0, 1), never 0 or 1
    return (-torch.log(uniform)).to(torch.float32)


class RowParams:
    """Per-row sampling parameters for `rows` rows, on the device (rows are slots of the engine)."""

    def __init__(self, rows: int, device: torch.device) -> None:
        self.temperature = torch.ones(rows, dtype=torch.float32, device=device)
        self.top_k = torch.zeros(rows, dtype=torch.int64, device=device)  # 0 = off
        self.top_p = torch.ones(rows, dtype=torch.float32, device=device)
        self.repetition_penalty = torch.ones(rows, dtype=torch.float32, device=device)
        self.do_sample = torch.zeros(rows, dtype=torch.bool, device=device)
        self.seed = torch.zeros(rows, dtype=torch.int64, device=device)
        self.min_new = torch.zeros(rows, dtype=torch.int64, device=device)

    # The parameters' names, in the order `tensors` and `of` use.
    FIELDS = ("temperature", "top_k", "top_p", "repetition_penalty", "do_sample", "seed", "min_new")

    def tensors(self) -> list[torch.Tensor]:
        return [getattr(self, name) for name in self.FIELDS]

    @staticmethod
    def of(columns: Sequence[torch.Tensor]) -> RowParams:
        """Parameters held in the given tensors [n] (in `tensors()`' order; views, may be strided)."""
        held = object.__new__(RowParams)
        for name, t in zip(RowParams.FIELDS, columns, strict=True):
            setattr(held, name, t)
        return held

    def rows(self, lo: int, hi: int) -> RowParams:
        """A view of rows [lo, hi) (shares storage: writes go through)."""
        return RowParams.of([t[lo:hi] for t in self.tensors()])


def choose_codes(
    logits: torch.Tensor, seen: torch.Tensor, step: torch.Tensor, p: RowParams, stop_token: int
) -> torch.Tensor:
    """logits [B, V] float32, seen [B, V] bool, step [B] (index of the code being chosen), the
    parameters of those B rows -> codes [B]. No host synchronisation."""
    vocab = logits.shape[1]
    penalty = p.repetition_penalty[:, None]
    penalised = torch.where(logits < 0, logits * penalty, logits / penalty)
    logits = torch.where(seen, penalised, logits)
    block_stop = step < p.min_new
    logits[:, stop_token] = torch.where(block_stop, float("-inf"), logits[:, stop_token])
    greedy = logits.argmax(dim=-1)

    scaled = logits / p.temperature[:, None]
    # top-k by value, as HF: keep everything >= the k-th largest (ties kept); k = 0 keeps all.
    ordered = scaled.sort(dim=-1, descending=True).values
    k = p.top_k.clamp(max=vocab)
    kth = ordered.gather(1, (k - 1).clamp(min=0)[:, None])
    kth = torch.where(k[:, None] > 0, kth, torch.full_like(kth, float("-inf")))
    scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    # top-p as HF: ascending sort, drop the low tail whose mass is <= 1 - top_p, keep the largest.
    asc, order = scaled.sort(dim=-1)
    cumulative = asc.softmax(dim=-1).cumsum(dim=-1)
    drop = cumulative <= (1 - p.top_p[:, None])
    drop[:, -1] = False
    scaled = scaled.masked_fill(drop.scatter(1, order, drop), float("-inf"))

    probs = scaled.softmax(dim=-1)
    drawn = (probs / exponential_noise(p.seed, step, vocab)).argmax(dim=-1)
    return torch.where(p.do_sample, drawn, greedy)
