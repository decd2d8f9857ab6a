"""`sampler.choose_codes` and the step's bookkeeping in one Triton kernel, one program per row.

Why: in torch the sampler is ~100 small kernels a step (two sorts of [B, 1026], softmaxes, scans,
the noise hash, gathers and scatters) and the bookkeeping after it a dozen more: about 0.2 ms on an
H200, as much as a sixth of a decode step at batch 1. Here a row's 1026 logits fit one block.

Same pipeline and parameters as `choose_codes` (HF's order: repetition penalty, min-new-tokens stop
mask, temperature, top-k, top-p, then argmax or the exponential race with the same counter-based
noise), so it picks the same codes, with two differences that only matter on exact ties:
top-p keeps every code whose value equals the smallest kept value, where a sort-and-scatter keeps
an arbitrary subset of such ties (torch's sort is not stable on CUDA); and probability masses and
softmaxes accumulate in another order than torch's, so a cut or a draw within rounding of a tie can
differ. A row's code depends on its own inputs only (batch invariance).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from xtts_server.engine.sampler import RowParams
from xtts_server.model import fused_decode


@triton.jit
def _pcg(x):
    """PCG-RXS-M-XS of 32-bit values held in int64, as `sampler._pcg`."""
    state = (x * 747796405 + 2891336453) & 0xFFFFFFFF
    word = ((state >> ((state >> 28) + 4)) ^ state) * 277803737 & 0xFFFFFFFF
    return (word >> 22) ^ word


@triton.jit
def _choose_kernel(
    logits_ptr, seen_ptr, step_ptr, pos_ptr, codes_ptr, latent_ptr, hist_ptr,
    temperature_ptr, top_k_ptr, top_p_ptr, penalty_ptr, do_sample_ptr, seed_ptr, min_new_ptr,
    V, DIM, stride_logits, stride_seen, stride_latent, stride_hist_row, stride_hist_step,
    stop, max_new, last_pos,
    s_temperature, s_top_k, s_top_p, s_penalty, s_do_sample, s_seed, s_min_new,
    BLOCK: tl.constexpr, BLOCK_DIM: tl.constexpr, ADVANCE: tl.constexpr, WAYS: tl.constexpr,
    PASSES: tl.constexpr, PDL: tl.constexpr,
):  # fmt: skip
    """One program per row. PDL: the row's parameters and state (set before the step, or by the
    previous step's program) are loaded, and the draw's noise made, while the head's kernel
    finishes; the logits and the latent after it.
    It releases nothing early: the next step's kernels start after it ends."""
    r = tl.program_id(0)
    i = tl.arange(0, BLOCK)
    valid = i < V
    neg_inf = float("-inf")
    seen_row = seen_ptr + r * stride_seen
    seen = tl.load(seen_row + i, mask=valid, other=0) != 0
    penalty = tl.load(penalty_ptr + r * s_penalty)
    k = tl.load(step_ptr + r)
    min_new = tl.load(min_new_ptr + r * s_min_new)
    temperature = tl.load(temperature_ptr + r * s_temperature)
    top_k = tl.load(top_k_ptr + r * s_top_k)
    below = 1 - tl.load(top_p_ptr + r * s_top_p)
    # The draw's noise, E ~ Exp(1) hashed from (seed, step, code) as `exponential_noise`: it needs
    # no logit, so it is made while the head's kernel runs (a float64 log of every lane).
    row_hash = _pcg((tl.load(seed_ptr + r * s_seed) + _pcg(k & 0xFFFFFFFF)) & 0xFFFFFFFF)
    bits = _pcg(row_hash ^ (i.to(tl.int64) * 0x9E3779B1 & 0xFFFFFFFF))
    uniform = (bits.to(tl.float64) + 0.5) * (1.0 / 4294967296.0)
    noise = (-tl.log(uniform)).to(tl.float32)
    sample = tl.load(do_sample_ptr + r * s_do_sample) != 0
    if ADVANCE:
        pos = tl.load(pos_ptr + r)  # (written by the previous step's program)
    if PDL:
        tl.extra.cuda.gdc_wait()  # the head's logits and latent are visible from here
    x = tl.load(logits_ptr + r * stride_logits + i, mask=valid, other=neg_inf).to(tl.float32)
    if ADVANCE:  # loaded with the logits: at the end it would be a memory round trip more
        d = tl.arange(0, BLOCK_DIM)
        latent = tl.load(latent_ptr + r * stride_latent + d, mask=d < DIM)
    # Repetition penalty on seen codes, then the stop code barred before min_new codes.
    x = tl.where(seen, tl.where(x < 0, x * penalty, tl.math.div_rn(x, penalty)), x)
    x = tl.where((i == stop) & (k < min_new), neg_inf, x)
    greedy = tl.argmax(x, axis=0)  # the first of equal maxima, as torch

    scaled = tl.math.div_rn(x, temperature)  # padding stays -inf
    # Selections by value, as searches over an order-preserving int32 image of the values (a sort
    # of 2048 lanes is several times slower in Triton's interpreter, which CI runs). Each pass
    # tests WAYS thresholds at once (one reduction of a [WAYS, BLOCK] tile) and keeps the part of
    # the range between the last that passes and the first that fails: PASSES passes narrow a
    # range of 2**32 keys to one. Every pass is a chain of dependent reductions, the sampler's
    # cost at one row; its length is the search's, not the vocabulary's.
    image = scaled.to(tl.int32, bitcast=True)
    key = tl.where(image < 0, image ^ 0x7FFFFFFF, image)  # float order (sign-magnitude to two's complement)
    key = tl.where(valid, key, -2147483648)  # the padding below everything
    lo0 = tl.min(tl.where(valid, key, 2147483647), axis=0).to(tl.int64)
    hi0 = tl.max(key, axis=0).to(tl.int64)
    j = tl.arange(0, WAYS).to(tl.int64)
    # top-k (0 = off): keep values >= the k-th largest, the largest T with #(key >= T) >= k
    # (true at lo: thresholds pass, then fail, in order).
    lo, hi = lo0, hi0
    for _ in range(PASSES):
        width = (hi - lo + WAYS) // WAYS  # of each part, rounded up
        at = lo + j * width  # [WAYS]; past hi: fails below (its int32 image may wrap)
        count = tl.sum((key[None, :] >= at.to(tl.int32)[:, None]).to(tl.int32), axis=1)
        passed = tl.maximum(tl.sum(((at <= hi) & (count >= top_k)).to(tl.int64), axis=0), 1)  # (k > V: 0)
        hi = tl.minimum(hi, lo + passed * width - 1)
        lo = lo + (passed - 1) * width
    kth = tl.where(top_k > 0, lo, lo0)
    # top-p: HF drops the ascending prefix whose cumulative probability is <= 1 - top_p, the
    # largest never: what is left is every value >= S, the smallest with P(key <= S) > 1 - top_p
    # (hi0 if none: then only the largest is kept).
    e = tl.where(key >= kth, tl.exp(scaled - tl.max(scaled, axis=0)), 0.0)
    probs = tl.math.div_rn(e, tl.sum(e, axis=0))
    lo, hi = lo0, hi0
    for _ in range(PASSES):
        width = (hi - lo + WAYS) // WAYS
        at = tl.minimum(lo + (j + 1) * width - 1, hi)  # each part's last key
        mass = tl.sum(tl.where(key[None, :] <= at.to(tl.int32)[:, None], probs[None, :], 0.0), axis=1)
        failed = tl.sum((mass <= below).to(tl.int64), axis=0)  # the parts below S
        hi = tl.minimum(hi, lo + (failed + 1) * width - 1)
        lo = tl.minimum(lo + failed * width, hi)
    kept = tl.where((key >= kth) & (key >= lo), scaled, neg_inf)

    # The draw: argmax of p / E (the noise above).
    e = tl.exp(kept - tl.max(kept, axis=0))
    probs = tl.math.div_rn(e, tl.sum(e, axis=0))
    drawn = tl.argmax(tl.math.div_rn(probs, noise), axis=0)
    code = tl.where(sample, drawn, greedy).to(tl.int64)
    tl.store(codes_ptr + r, code)

    if ADVANCE:  # the step's bookkeeping (Runner._decode_fn's unfused lines)
        tl.store(seen_row + code, 1)
        tl.store(step_ptr + r, tl.minimum(k + 1, max_new))
        tl.store(pos_ptr + r, tl.minimum(pos + 1, last_pos))
        dst = hist_ptr + r * stride_hist_row + tl.minimum(k, max_new) * stride_hist_step
        tl.store(dst + d, latent, mask=d < DIM)


# (thresholds a search pass tests, warps): measured on the GPU (bench/pdl_step.py).
SEARCH = (4, 4)
# Programmatic dependent launch: None = as the decode step's kernels (`fused_decode._pdl`).
PDL: bool | None = None


def search_passes(ways: int) -> int:
    """Passes of a `ways`-threshold search that narrow 2**32 keys to one."""
    return -(-32 // (ways.bit_length() - 1))


def _launch(
    logits: torch.Tensor,
    seen: torch.Tensor,
    step: torch.Tensor,
    params: RowParams,
    stop: int,
    codes: torch.Tensor,
    advance: tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int] | None,
    pdl: bool = False,
) -> None:
    """pdl: launched with programmatic dependent launch, reading the rows' parameters and state
    before the previous kernel ends: only where that kernel writes none of them."""
    b, vocab = logits.shape
    ways, warps = SEARCH
    assert ways >= 2 and ways & (ways - 1) == 0
    assert logits.stride(1) == 1 and seen.stride(1) == 1 and seen.dtype == torch.bool
    seen8 = seen.view(torch.uint8)  # same bytes; stored as 1 for True
    p = params
    if advance is None:
        pos, latent, hist, max_new, last_pos = step, logits, logits, 0, 0  # unused
        dim, strides = 1, (0, 0, 0)
    else:
        pos, latent, hist, max_new, last_pos = advance
        dim = latent.shape[1]
        strides = (latent.stride(0), hist.stride(0), hist.stride(1))
    _choose_kernel[(b,)](
        logits, seen8, step, pos, codes, latent, hist,
        p.temperature, p.top_k, p.top_p, p.repetition_penalty, p.do_sample.view(torch.uint8), p.seed,
        p.min_new,
        vocab, dim, logits.stride(0), seen8.stride(0), *strides, stop, max_new, last_pos,
        *(t.stride(0) for t in p.tensors()),
        BLOCK=triton.next_power_of_2(vocab), BLOCK_DIM=triton.next_power_of_2(dim),
        ADVANCE=advance is not None, WAYS=ways, PASSES=search_passes(ways), PDL=pdl,
        num_warps=warps, **({"launch_pdl": True} if pdl else {}),
    )  # fmt: skip


def choose_codes(
    logits: torch.Tensor, seen: torch.Tensor, step: torch.Tensor, p: RowParams, stop_token: int
) -> torch.Tensor:
    """As `sampler.choose_codes` (logits [B, V], seen [B, V] bool, step [B], the B rows'
    parameters) -> codes [B]; reads only."""
    codes = torch.empty(logits.shape[0], dtype=torch.long, device=logits.device)
    _launch(logits, seen, step, p, stop_token, codes, None)
    return codes


def choose_and_advance(
    logits: torch.Tensor,
    latent: torch.Tensor,
    *,
    seen: torch.Tensor,
    step: torch.Tensor,
    pos: torch.Tensor,
    codes: torch.Tensor,
    hist: torch.Tensor,
    params: RowParams,
    stop_token: int,
    max_new: int,
    last_pos: int,
) -> None:
    """A decode step's end for rows [0, B): choose each row's code from logits [B, V] (at step
    `step`), then, as the runner's unfused step does: codes[r] = code, seen[r, code] = True,
    hist[r, min(step, max_new)] = latent[r], step += 1 (at most max_new), pos += 1 (at most
    last_pos). seen, step, pos, codes: the rows' [B, ...] views of the runner's state. The kernel
    before it (the head) must write none of the rows' state or parameters: with PDL they are read
    while it runs."""
    pdl = fused_decode._pdl(logits.device) if PDL is None else PDL
    _launch(logits, seen, step, params, stop_token, codes, (pos, latent, hist, max_new, last_pos), pdl)
