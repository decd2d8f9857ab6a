"""The GPT's one-token decode step in five Triton kernels a layer, for small batches on a GPU.

Why: at batch 1 a decode step reads 0.75 GB of weights (0.16 ms at an H200's bandwidth) but the
unfused step launches ~13 kernels a layer (LayerNorm, GEMM, bias, KV write, attention, GELU, adds),
each a few microseconds however little it does: 476 kernels, 1.77 ms. Fused, a layer is

    qkv = LN_1(x) @ W_attn + b          (LayerNorm in the GEMM's prologue)
    y   = attention(qkv, cache)         (writes this token's key and value, then attends)
    x   = x + y @ W_proj + b            (residual in the epilogue)
    h   = gelu(LN_2(x) @ W_fc + b)      (LayerNorm prologue, GELU epilogue)
    x   = x + h @ W_mlp + b

Numerics follow the unfused fp16 path: LayerNorm, softmax and accumulation in float32, and every
value the unfused path rounds to the model's dtype (LayerNorm output, linear output before GELU or
the residual add) is rounded here at the same place.

Batch invariance: a row's result never depends on the other rows or on the batch size (fixed
16-row tiles, a block configuration chosen by the weight's shape alone, split reductions combined
in a fixed order), so a stream decodes the same codes alone or in any batch.

Programmatic dependent launch (PDL, Hopper and later): each kernel is launched while the previous
one runs, loads its weights (which no kernel writes) and then waits for the previous kernel's
results; at batch 1 that takes a step from 0.95 to 0.64 ms on an H200 (see `_PDL_CONFIGS`).

Needs Triton (bundled with CUDA builds of torch). With TRITON_INTERPRET=1 the same kernels run on
the CPU, which is how the CPU test suite checks them.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import torch
import triton
import triton.language as tl

if TYPE_CHECKING:
    from xtts_server.model.gpt import GPT, Block

# Rows per tile: the smallest tensor-core tile. Fixed for every batch size (batch invariance).
BLOCK_M = 16


@triton.jit
def _linear_kernel(
    x_ptr, w_ptr, b_ptr, res_ptr, ln_w_ptr, ln_b_ptr, ln2_w_ptr, ln2_b_ptr, norm_out_ptr, out_ptr,
    part_ptr, count_ptr, pos_emb_ptr, codes_ptr, step_ptr, max_step,
    M, N, K, stride_x, stride_w, stride_res, stride_out, eps, eps2, k_split,
    LN: tl.constexpr, GELU: tl.constexpr, RESIDUAL: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, K_ROW: tl.constexpr,
    SPLIT_K: tl.constexpr, PDL: tl.constexpr, PREFETCH: tl.constexpr, EARLY_RES: tl.constexpr,
    EMBED: tl.constexpr, ROW_TILE: tl.constexpr, CHAINS: tl.constexpr,
):  # fmt: skip
    """out[M, N] = (norm(x) if LN else x)[M, K] @ w[N, K]^T + b, then GELU or + res[M, N]. norm:
    LN = 1, one LayerNorm (ln_w, ln_b, eps); LN = 2, a second one after it (ln2_w, ln2_b, eps2: the
    release's ln_f then final_norm before the head), each rounded to the dtype where the unfused
    path rounds it; the programs of column tile 0 also store the doubly normalised rows in norm_out.

    SPLIT_K > 1: program (n, m, s) sums K range [s * k_split, (s + 1) * k_split) (k_split a
    multiple of BLOCK_K) into `part`; the last of a tile's SPLIT_K programs to finish (a counter
    per tile, reset by it) adds the partial sums in split order and applies the epilogue. More
    programs read the weights at once (a 1024 x 4096 matrix is 64 tiles of 16 columns: too few
    to keep an H200's memory busy), and the fixed order keeps the result deterministic.

    EMBED: row m of x is made here, x_ptr[codes[m]] + pos_emb[min(step[m], max_step)] (the
    audio-code and position embeddings, added in float32 and rounded as the unfused add is), and
    the programs of column tile 0 store it in norm_out (the residual of the layer).

    PDL (programmatic dependent launch, see `_pdl`): what does not depend on the previous kernel
    is loaded before waiting for it to finish: the bias and, with PREFETCH (a program's whole K
    range is one BLOCK_K tile), the weight tile; with EARLY_RES the residual too (the caller
    guarantees it was written at least two launches back, see `decode_step`). The next kernel
    is released once every program has passed its wait, so at most two kernels overlap
    (releasing it at the start instead was slower: BENCHMARKS.md, session 10).

    ROW_TILE (LN, and the program's K range is the whole row, one BLOCK_K = K_ROW tile): the
    GEMM's input is normalised from the rows the statistics were taken from, not loaded again
    (one dependent memory round trip fewer after the wait), and the LayerNorms' weights are
    loaded before the wait. Same arithmetic, same bits.

    CHAINS > 1: a BLOCK_K tile's product is CHAINS independent tensor-core chains over
    BLOCK_K / CHAINS columns each, summed in a fixed order, instead of one chain of dependent
    MMAs over all of them (at one row the chain's latency, not its throughput, is the cost)."""
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_k = tl.program_id(2)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    m_ok = rm < M
    n_ok = rn < N
    if EMBED:  # rows of the embedding tables (codes and steps were set before the step)
        code = tl.load(codes_ptr + rm, mask=m_ok, other=0)
        at = tl.minimum(tl.load(step_ptr + rm, mask=m_ok, other=0), max_step)
        x_rows = x_ptr + code[:, None] * stride_x
        p_rows = pos_emb_ptr + at[:, None] * stride_x
    else:
        x_rows = x_ptr + rm[:, None] * stride_x
    dtype = out_ptr.dtype.element_ty
    k_lo = pid_k * k_split
    # Weights, bias (and an old residual) first: they do not depend on the previous kernel.
    bias = tl.load(b_ptr + rn, mask=n_ok, other=0.0).to(tl.float32)
    if PREFETCH:  # [BLOCK_K, BLOCK_N] tile of w^T: w is [N, K] row-major (nn.Linear's layout)
        kk_pre = k_lo + rk
        w_pre = tl.load(w_ptr + rn[None, :] * stride_w + kk_pre[:, None],
                        mask=n_ok[None, :] & (kk_pre < K)[:, None], other=0.0)  # fmt: skip
    if ROW_TILE:  # the LayerNorms' weights: parameters, which no kernel writes
        rr = tl.arange(0, K_ROW)
        g_row = tl.load(ln_w_ptr + rr, mask=rr < K, other=0.0).to(tl.float32)
        b_row = tl.load(ln_b_ptr + rr, mask=rr < K, other=0.0).to(tl.float32)
        if LN == 2:
            g2_row = tl.load(ln2_w_ptr + rr, mask=rr < K, other=0.0).to(tl.float32)
            b2_row = tl.load(ln2_b_ptr + rr, mask=rr < K, other=0.0).to(tl.float32)
    res = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    if EARLY_RES:
        res_ok = m_ok[:, None] & n_ok[None, :]
        res = tl.load(res_ptr + rm[:, None] * stride_res + rn[None, :], mask=res_ok, other=0.0).to(tl.float32)
    if PDL:
        tl.extra.cuda.gdc_wait()  # the previous kernel's writes are visible from here
        tl.extra.cuda.gdc_launch_dependents()
    if LN > 0:
        # Row statistics in float32 from whole rows (K_ROW >= K) loaded at once: a loop of
        # dependent loads here would cost more than the GEMM at one row.
        rr = tl.arange(0, K_ROW)
        ok = m_ok[:, None] & (rr < K)[None, :]
        row = tl.load(x_rows + rr[None, :], mask=ok, other=0.0)
        if EMBED:
            row = (row.to(tl.float32) + tl.load(p_rows + rr[None, :], mask=ok, other=0.0).to(tl.float32)).to(
                dtype
            )
        row = row.to(tl.float32)
        mean = tl.sum(row, axis=1) / K
        centred = tl.where(ok, row - mean[:, None], 0.0)
        rstd = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=1) / K + eps)
        if LN == 2:
            if not ROW_TILE:
                g_row = tl.load(ln_w_ptr + rr, mask=rr < K, other=0.0).to(tl.float32)
                b_row = tl.load(ln_b_ptr + rr, mask=rr < K, other=0.0).to(tl.float32)
            first = (centred * rstd[:, None] * g_row[None, :] + b_row[None, :]).to(dtype).to(tl.float32)
            mean2 = tl.sum(tl.where(ok, first, 0.0), axis=1) / K
            centred2 = tl.where(ok, first - mean2[:, None], 0.0)
            rstd2 = 1.0 / tl.sqrt(tl.sum(centred2 * centred2, axis=1) / K + eps2)
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for k0 in range(k_lo, tl.minimum(k_lo + k_split, K), BLOCK_K):
        kk = k0 + rk
        k_ok = kk < K
        x_ok = m_ok[:, None] & k_ok[None, :]
        if ROW_TILE:  # (one iteration, kk = rr) the rows are in `row`, `centred`
            if EMBED and pid_n == 0:
                tl.store(norm_out_ptr + rm[:, None] * stride_x + kk[None, :], row.to(dtype), mask=x_ok)
            xk = centred * rstd[:, None] * g_row[None, :] + b_row[None, :]
            if LN == 2:
                xk = centred2 * rstd2[:, None] * g2_row[None, :] + b2_row[None, :]
                if pid_n == 0:
                    tl.store(norm_out_ptr + rm[:, None] * stride_x + kk[None, :], xk.to(dtype), mask=x_ok)
        else:
            xk = tl.load(x_rows + kk[None, :], mask=x_ok, other=0.0)
            if EMBED:
                pos = tl.load(p_rows + kk[None, :], mask=x_ok, other=0.0).to(tl.float32)
                xk = (xk.to(tl.float32) + pos).to(dtype)
                if pid_n == 0:
                    tl.store(norm_out_ptr + rm[:, None] * stride_x + kk[None, :], xk, mask=x_ok)
            if LN > 0:
                gamma = tl.load(ln_w_ptr + kk, mask=k_ok, other=0.0).to(tl.float32)
                beta = tl.load(ln_b_ptr + kk, mask=k_ok, other=0.0).to(tl.float32)
                xk = (xk.to(tl.float32) - mean[:, None]) * rstd[:, None] * gamma[None, :] + beta[None, :]
                if LN == 2:
                    gamma2 = tl.load(ln2_w_ptr + kk, mask=k_ok, other=0.0).to(tl.float32)
                    beta2 = tl.load(ln2_b_ptr + kk, mask=k_ok, other=0.0).to(tl.float32)
                    xk = xk.to(dtype).to(tl.float32)
                    xk = (xk - mean2[:, None]) * rstd2[:, None] * gamma2[None, :] + beta2[None, :]
                    if pid_n == 0:
                        tl.store(norm_out_ptr + rm[:, None] * stride_x + kk[None, :], xk.to(dtype), mask=x_ok)
        if PREFETCH:  # (one iteration)
            w = w_pre
        else:
            w_ok = n_ok[None, :] & k_ok[:, None]
            w = tl.load(w_ptr + rn[None, :] * stride_w + kk[:, None], mask=w_ok, other=0.0)
        xw = xk.to(w.dtype)
        if CHAINS > 1:  # [CHAINS, BLOCK_M, BLOCK_K / CHAINS] @ [CHAINS, BLOCK_K / CHAINS, BLOCK_N]
            xw = tl.permute(tl.reshape(xw, [BLOCK_M, CHAINS, BLOCK_K // CHAINS]), [1, 0, 2])
            w3 = tl.reshape(w, [CHAINS, BLOCK_K // CHAINS, BLOCK_N])
            if IEEE:
                acc += tl.sum(tl.dot(xw, w3, input_precision="ieee"), axis=0)
            else:
                acc += tl.sum(tl.dot(xw, w3), axis=0)
        elif IEEE:  # float32 weights: full precision, not TF32
            acc += tl.dot(xw, w, input_precision="ieee")
        else:
            acc += tl.dot(xw, w)
    if SPLIT_K > 1:
        tile = pid_m * tl.num_programs(0) + pid_n
        parts = part_ptr + (tile * SPLIT_K) * BLOCK_M * BLOCK_N
        inner = tl.arange(0, BLOCK_M)[:, None] * BLOCK_N + tl.arange(0, BLOCK_N)[None, :]
        tl.store(parts + pid_k * BLOCK_M * BLOCK_N + inner, acc)
        tl.debug_barrier()  # every thread's partial stored before the (releasing) count
        if tl.atomic_add(count_ptr + tile, 1) == SPLIT_K - 1:  # acq_rel: the others' are visible
            acc = tl.load(parts + inner, cache_modifier=".cg")
            for j in tl.static_range(1, SPLIT_K):
                acc += tl.load(parts + j * BLOCK_M * BLOCK_N + inner, cache_modifier=".cg")
            tl.store(count_ptr + tile, 0)  # ready for the next kernel
            _linear_epilogue(acc, bias, res, res_ptr, out_ptr, rm, rn, m_ok, n_ok, stride_res, stride_out,
                             GELU, RESIDUAL, EARLY_RES)  # fmt: skip
    else:
        _linear_epilogue(acc, bias, res, res_ptr, out_ptr, rm, rn, m_ok, n_ok, stride_res, stride_out,
                         GELU, RESIDUAL, EARLY_RES)  # fmt: skip


@triton.jit
def _linear_epilogue(
    acc, bias, res, res_ptr, out_ptr, rm, rn, m_ok, n_ok, stride_res, stride_out,
    GELU: tl.constexpr, RESIDUAL: tl.constexpr, EARLY_RES: tl.constexpr,
):  # fmt: skip
    """bias [BLOCK_N] in float32; res: the residual tile when EARLY_RES loaded it, else unused."""
    out_ty = out_ptr.dtype.element_ty
    y = acc + bias[None, :]
    y = y.to(out_ty).to(tl.float32)  # the unfused linear's output is rounded to the dtype here
    if GELU:
        # GPT-2's gelu_new: 0.5 y (1 + tanh(sqrt(2/pi) (y + 0.044715 y^3))), tanh(u) = 1 - 2 / (e^2u + 1)
        u = 0.7978845608028654 * (y + 0.044715 * y * y * y)
        y = 0.5 * y * (2.0 - 2.0 / (tl.exp(2.0 * u) + 1.0))
    ok = m_ok[:, None] & n_ok[None, :]
    if RESIDUAL:
        if EARLY_RES:
            y += res
        else:
            y += tl.load(res_ptr + rm[:, None] * stride_res + rn[None, :], mask=ok, other=0.0).to(tl.float32)
    tl.store(out_ptr + rm[:, None] * stride_out + rn[None, :], y.to(out_ty), mask=ok)


@triton.jit
def _attend_kernel(
    qkv_ptr, kv_ptr, pos_ptr, out_ptr, part_ptr, count_ptr,
    C, H, stride_qkv, stride_kv_j, stride_kv_r, stride_kv_h, stride_kv_s, stride_out, scale,
    D: tl.constexpr, CHUNK: tl.constexpr, SPLITS: tl.constexpr, PDL: tl.constexpr,
):  # fmt: skip
    """Decode attention of (row b, head h) over positions [0, p], p the row's position, split in
    chunks of CHUNK positions, one program each (program j: chunk j, if the row has one): a
    program per (row, head) alone would leave most of the GPU idle at small batches.

    The chunk holding p takes the new key and value from qkv and writes them to the cache; no
    program reads position p from the cache. A row of one chunk writes its output directly; else
    each chunk leaves (max score, sum of exp, weighted values) in `part`, and the last chunk to
    finish (a counter per (row, head), reset by it) combines them in chunk order. The result
    depends on the row's own position only, never on the batch. With PDL the cached keys and
    values are loaded before waiting for the qkv kernel (see `_linear_kernel`)."""
    b = tl.program_id(0)
    h = tl.program_id(1)
    j = tl.program_id(2)
    p = tl.load(pos_ptr + b)  # (set before the step: safe to read before the wait)
    n = p // CHUNK + 1  # chunks of this row
    if j < n:
        d = tl.arange(0, D)
        keys = kv_ptr + b * stride_kv_r + h * stride_kv_h
        values = keys + stride_kv_j
        s = j * CHUNK + tl.arange(0, CHUNK)
        cached = (s < p)[:, None]
        # Positions before p were written by earlier steps: loaded before waiting for qkv (in
        # the cache's dtype: half the registers while they wait).
        k = tl.load(keys + s[:, None] * stride_kv_s + d[None, :], mask=cached, other=0.0)
        v = tl.load(values + s[:, None] * stride_kv_s + d[None, :], mask=cached, other=0.0)
        if PDL:
            tl.extra.cuda.gdc_wait()
            tl.extra.cuda.gdc_launch_dependents()
        k = k.to(tl.float32)
        v = v.to(tl.float32)
        qkv = qkv_ptr + b * stride_qkv + h * D + d  # q, then k at +C, v at +2C (the [3, H, D] split)
        q = tl.load(qkv).to(tl.float32)
        k_new = tl.load(qkv + C)
        v_new = tl.load(qkv + 2 * C)
        if j == n - 1:
            tl.store(keys + p * stride_kv_s + d, k_new)
            tl.store(values + p * stride_kv_s + d, v_new)
        new = (s == p)[:, None]
        k = tl.where(new, k_new.to(tl.float32)[None, :], k)
        v = tl.where(new, v_new.to(tl.float32)[None, :], v)
        score = tl.where(s <= p, tl.sum(k * q[None, :], axis=1) * scale, float("-inf"))
        top = tl.max(score, axis=0)
        weight = tl.exp(score - top)  # 0 past p
        mass = tl.sum(weight, axis=0)
        acc = tl.sum(weight[:, None] * v, axis=0)
        out = out_ptr + b * stride_out + h * D + d
        if n == 1:
            tl.store(out, (acc / mass).to(out_ptr.dtype.element_ty))
        else:
            head = b * H + h
            part = part_ptr + (head * SPLITS + j) * (D + 2)
            tl.store(part + d, acc)
            tl.store(part + D, top)
            tl.store(part + D + 1, mass)
            tl.debug_barrier()  # every thread's partial stored before the (releasing) count
            if tl.atomic_add(count_ptr + head, 1) == n - 1:  # acq_rel: the others' partials are visible
                jj = tl.arange(0, SPLITS)
                ok = jj < n
                parts = part_ptr + (head * SPLITS + jj) * (D + 2)
                tops = tl.load(parts + D, mask=ok, other=float("-inf"), cache_modifier=".cg")
                masses = tl.load(parts + D + 1, mask=ok, other=0.0, cache_modifier=".cg")
                accs = tl.load(parts[:, None] + d[None, :], mask=ok[:, None], other=0.0, cache_modifier=".cg")
                scale_j = tl.exp(tops - tl.max(tops, axis=0))  # 0 for absent chunks
                y = tl.sum(scale_j[:, None] * accs, axis=0) / tl.sum(scale_j * masses, axis=0)
                tl.store(out, y.to(out_ptr.dtype.element_ty))
                tl.store(count_ptr + head, 0)  # ready for the next layer


# Block configuration by weight shape (N, K) -> (BLOCK_N, BLOCK_K, warps, stages, SPLIT_K). A
# function of the shape (and of whether PDL is on, fixed for the process) alone, never of the
# batch (batch invariance). Without PDL:
_CONFIGS: dict[tuple[int, int], tuple[int, int, int, int, int]] = {}
_CONFIGS.update(
    {
        # Measured on an H200 (bench/fused_kernels.py), fastest over the 30 layers' weights at one row.
        (3072, 1024): (32, 1024, 4, 2, 1),  # attention's qkv
        (1024, 1024): (16, 512, 4, 3, 1),  # attention's output projection
        (4096, 1024): (32, 1024, 4, 2, 1),  # MLP in
        (1024, 4096): (32, 512, 4, 3, 4),  # MLP out: split in 4 (8.0 -> 6.5 us)
        (1026, 1024): (16, 1024, 4, 2, 1),  # the audio-code head (not measured: as qkv, 65 programs)
    }
)
# With PDL: one BLOCK_K tile per program (its weights loaded before the wait) and more programs.
# Measured on an H200 (bench/pdl_step.py): a batch-1 step 0.947 ms without PDL, 0.788 ms with PDL
# and the table above, 0.716 ms with one tile a program, 0.644 ms with the MLP's out projection
# split in 8 (256 programs).
_PDL_CONFIGS: dict[tuple[int, int], tuple[int, int, int, int, int]] = {
    (3072, 1024): (32, 1024, 4, 1, 1),
    (1024, 1024): (16, 1024, 4, 1, 1),
    (4096, 1024): (32, 1024, 4, 1, 1),
    (1024, 4096): (32, 512, 4, 1, 8),
    (1026, 1024): (16, 1024, 4, 1, 1),
}
_DEFAULT_CONFIG = (32, 256, 4, 3, 2)
# A LayerNorm linear whose program reads the whole row in one tile normalises the rows it took
# the statistics from (`_linear_kernel`'s ROW_TILE: same bits, one memory round trip fewer).
ROW_TILE = True
# Independent MMA chains a BLOCK_K tile is split into (`_linear_kernel`'s CHAINS; 1: one chain).
# Not bit-identical to one chain (another order of float32 sums). A benchmark setting until timed.
MMA_CHAINS = 1
# Programmatic dependent launch: None = on where supported (`_pdl`); benchmarks set True/False.
PDL: bool | None = None


def _pdl(device: torch.device) -> bool:
    """Launch the step's kernels with programmatic dependent launch (Hopper and later: a kernel
    starts while the previous one finishes, loads what does not depend on it, then waits), unless
    XTTS_FUSED_PDL=0. Off in Triton's interpreter."""
    if PDL is not None:
        return PDL
    if device.type != "cuda" or os.environ.get("TRITON_INTERPRET") == "1":
        return False
    if os.environ.get("XTTS_FUSED_PDL", "1") == "0":
        return False
    return torch.cuda.get_device_capability(device) >= (9, 0)


_COUNTER_SLOTS = 1 << 16
# Per-tile counters of finished splits, per device (as the attention's `_COUNTERS`).
_TILE_COUNTERS: dict[torch.device, torch.Tensor] = {}


def linear(
    x: torch.Tensor,
    layer: torch.nn.Linear,
    *,
    norm: torch.nn.LayerNorm | None = None,
    norm2: torch.nn.LayerNorm | None = None,
    norm_out: torch.Tensor | None = None,
    gelu: bool = False,
    residual: torch.Tensor | None = None,
    residual_early: bool = False,
    embed: tuple[torch.nn.Embedding, torch.nn.Embedding, torch.Tensor, torch.Tensor, int] | None = None,
) -> torch.Tensor:
    """layer(norm(x)) for x [M, K] (rows contiguous), then GELU (tanh form) or + residual [M, N].
    norm2: a second LayerNorm after norm (layer(norm2(norm(x))), each rounded to the dtype), whose
    output is also stored in norm_out (x's shape and strides). residual_early: the residual was
    written before the last launch on this stream, so that with PDL it is read before waiting.
    embed = (embedding, pos_embedding, codes [M], step [M], max_step): x [M, K] is not read but
    written, row m = embedding(codes[m]) + pos_embedding(min(step[m], max_step)), the input of the
    linear (the decode step's first: one kernel fewer a step than embedding apart)."""
    w, bias = layer.weight, layer.bias
    assert bias is not None and x.stride(-1) == 1 and w.stride(-1) == 1
    assert embed is None or (norm is not None and norm2 is None)
    assert (norm2 is None) == (norm_out is None) and (norm2 is None or norm is not None)
    m, k = x.shape
    n = w.shape[0]
    out = torch.empty((m, n), dtype=x.dtype, device=x.device)
    pdl = _pdl(x.device)
    cfg = linear_config(n, k, pdl, norm is not None)
    block_n, split = cfg["BLOCK_N"], cfg["SPLIT_K"]
    grid = (triton.cdiv(n, block_n), triton.cdiv(m, BLOCK_M), split)
    tiles = grid[0] * grid[1]
    part, counters = out, out  # (unused without a split)
    if split > 1:
        part = torch.empty((tiles * split * BLOCK_M * block_n,), dtype=torch.float32, device=x.device)
        if x.device not in _TILE_COUNTERS:
            _TILE_COUNTERS[x.device] = torch.zeros(_COUNTER_SLOTS, dtype=torch.int32, device=x.device)
        counters = _TILE_COUNTERS[x.device]
        assert tiles <= _COUNTER_SLOTS
    res = residual if residual is not None else out
    ln = norm if norm is not None else layer  # (a stand-in whose weight and bias go unread)
    ln2 = norm2 if norm2 is not None else ln
    source, pos_emb, codes, step, max_step = x, x, x, x, 0  # (stand-ins, unread without embed)
    if embed is not None:
        table, pos_table, codes, step, max_step = embed
        source, pos_emb, norm_out = table.weight, pos_table.weight, x  # x: where the rows go
        assert source.stride() == pos_emb.stride() == x.stride() == (k, 1)  # (one row stride)
    if norm_out is None:
        norm_out = out  # (a stand-in, never written)
    else:
        assert norm_out.shape == x.shape and norm_out.stride() == x.stride()  # (written at x's strides)
    _linear_kernel[grid](
        source, w, bias, res, ln.weight, ln.bias, ln2.weight, ln2.bias, norm_out, out, part, counters,
        pos_emb, codes, step, max_step,
        m, n, k, x.stride(0), w.stride(0), res.stride(0), out.stride(0), getattr(ln, "eps", 0.0),
        getattr(ln2, "eps", 0.0), cfg["k_split"],
        LN=0 if norm is None else 1 if norm2 is None else 2, GELU=gelu, RESIDUAL=residual is not None,
        IEEE=w.dtype == torch.float32, BLOCK_M=BLOCK_M, PDL=pdl,
        EARLY_RES=pdl and residual_early and residual is not None, EMBED=embed is not None,
        **{name: value for name, value in cfg.items() if name != "k_split"},
        **({"launch_pdl": True} if pdl else {}),
    )  # fmt: skip
    return out


def linear_config(n: int, k: int, pdl: bool, norm: bool) -> dict[str, int | bool]:
    """How `linear` launches `_linear_kernel` for a weight [n, k] (a function of the shape, never
    of the batch): the block configuration, the K range a program sums (k_split), and the
    constexprs that follow from them."""
    block_n, block_k, warps, stages, split = (_PDL_CONFIGS if pdl else _CONFIGS).get((n, k), _DEFAULT_CONFIG)
    k_split = triton.cdiv(triton.cdiv(k, split), block_k) * block_k
    split = triton.cdiv(k, k_split)  # (a short K may need fewer)
    k_row = triton.next_power_of_2(k)
    return {
        "k_split": k_split,
        "BLOCK_N": block_n,
        "BLOCK_K": block_k,
        "K_ROW": k_row,
        "SPLIT_K": split,
        "PREFETCH": pdl and k_split <= block_k,
        "ROW_TILE": ROW_TILE and norm and split == 1 and block_k == k_row,
        "CHAINS": MMA_CHAINS if block_k % (MMA_CHAINS * 16) == 0 else 1,  # (chains of whole MMA steps)
        "num_warps": warps,
        "num_stages": stages,
    }


# Positions per attention program, warps. 64: a row of the standard workload (~150 positions) is
# three programs a head.
ATTEND_CONFIG = (64, 4)
# Per-(row, head) counters of finished chunks, per device: zero between kernels (the last chunk
# resets its own), allocated once so that captured graphs keep a valid address.
_COUNTERS: dict[torch.device, torch.Tensor] = {}


def attend(qkv: torch.Tensor, kv: torch.Tensor, pos: torch.Tensor, heads: int) -> torch.Tensor:
    """qkv [B, 3C] (q, k, v of each row, as c_attn returns them), one layer's cache kv [2, R, H, S, D]
    (rows [0, B) are these rows), positions pos [B] -> attention output [B, C]. Writes each row's key
    and value at its position and attends to positions [0, pos] of its own row."""
    b, c3 = qkv.shape
    c = c3 // 3
    d = c // heads
    assert kv.stride(-1) == 1 and qkv.stride(-1) == 1 and d == kv.shape[-1]
    assert b * heads <= _COUNTER_SLOTS
    counters = _COUNTERS.get(qkv.device)
    if counters is None:
        counters = _COUNTERS[qkv.device] = torch.zeros(_COUNTER_SLOTS, dtype=torch.int32, device=qkv.device)
    chunk, warps = ATTEND_CONFIG
    splits = triton.cdiv(kv.shape[3], chunk)  # enough for a row at the cache's last position
    out = torch.empty((b, c), dtype=qkv.dtype, device=qkv.device)
    pdl = _pdl(qkv.device)
    part = torch.empty(
        (b * heads * triton.next_power_of_2(splits), d + 2), dtype=torch.float32, device=qkv.device
    )
    _attend_kernel[(b, heads, splits)](
        qkv, kv, pos, out, part, counters,
        c, heads, qkv.stride(0), kv.stride(0), kv.stride(1), kv.stride(2), kv.stride(3), out.stride(0),
        1.0 / math.sqrt(d), D=d, CHUNK=chunk, SPLITS=triton.next_power_of_2(splits), PDL=pdl,
        num_warps=warps, **({"launch_pdl": True} if pdl else {}),
    )  # fmt: skip
    return out


def decode_step(
    gpt: GPT, codes: torch.Tensor, step: torch.Tensor, pos: torch.Tensor, kv: torch.Tensor, max_step: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The engine's whole decode step for rows [0, B): embed codes[r] at audio position
    min(step[r], max_step), run the blocks writing each row's key and value at pos[r] of cache
    rows [0, B) of kv [L, 2, R, H, S, D], then the release's two final LayerNorms in the audio
    head's prologue. -> (latent [B, dim], logits [B, vocab]) in the model's dtype."""
    blocks = gpt.blocks
    x = torch.empty((codes.shape[0], gpt.args.gpt_n_model_channels), dtype=kv.dtype, device=kv.device)
    embed = (gpt.mel_embedding, gpt.mel_pos_embedding, codes, step, max_step)
    qkv = linear(x, blocks[0].attn.c_attn, norm=blocks[0].ln_1, embed=embed)  # also fills x
    for i, block in enumerate(blocks):
        if i > 0:
            qkv = linear(x, block.attn.c_attn, norm=block.ln_1)
        x, h = _block_mid(block, x, attend(qkv, kv[i], pos, block.attn.heads))
        x = linear(h, block.mlp.c_proj, residual=x, residual_early=True)
    latent = torch.empty_like(x)
    ln_f, final_norm = gpt.transformer.ln_f, gpt.final_norm
    logits = linear(x, gpt.mel_head, norm=ln_f, norm2=final_norm, norm_out=latent)
    return latent, logits


def _block_mid(block: Block, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x + proj(y) [B, C], and the MLP's activations of it [B, 4C]."""
    # Each residual was written at least two launches before the linear that adds it (residual_early).
    x = linear(y, block.attn.c_proj, residual=x, residual_early=True)
    return x, linear(x, block.mlp.c_fc, norm=block.ln_2, gelu=True)
