"""The GPT's prefill (whole prompts, nothing cached) in fewer kernels, for the engine on a GPU.

Why: a prompt alone is a few GEMMs the library does well, but the unfused prefill runs ten kernels
a layer (two LayerNorms, four linears, attention, GELU, two residual adds), each a few
microseconds at 64-96 rows, and its graph took 1.71 ms on an H100 (a tenth of the first audio's
wait). Here a layer is seven, still the library's GEMMs and attention, and the graph 1.41 ms
(BENCHMARKS.md, session 14):

    qkv = h @ W_attn + b                          (h: LN_1(x), made by the kernel before)
    y   = attention(qkv)                          (causal, q k v read in place from qkv)
    x, h = x + (y @ W_proj + b), LN_2(...)        (the add and the LayerNorm: one kernel)
    f   = gelu(h @ W_fc + b)                      (GELU in the GEMM's epilogue, cuBLASLt)
    x, h = x + (f @ W_mlp + b), LN_1'(...)        (the next layer's LayerNorm, or ln_f after the last)

and every layer's qkv lands in one buffer, whose keys and values the caller copies to its cache at
once (no stacking). Tiles bigger than the fused decode step's 16 rows made the linears slower than
the library (BENCHMARKS.md, sessions 11 and 12), so only the elementwise kernels are fused.

Numerics: the additions and LayerNorms round where the unfused path does (the sum to the dtype,
statistics in float32); the GELU epilogue applies GELU to the float32 sum before rounding (one
rounding fewer than the unfused linear then GELU, the same to the dtype's precision).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

if TYPE_CHECKING:
    from xtts_server.model.gpt import GPT


@triton.jit
def _add_norm_kernel(
    x_ptr, y_ptr, w_ptr, b_ptr, sum_ptr, out_ptr, N, stride, eps, BLOCK: tl.constexpr,
):  # fmt: skip
    """Row m: s = x + y (added in float32, rounded to the dtype as the unfused add is), stored in
    sum; its LayerNorm (float32 statistics, biased variance) stored in out."""
    m = tl.program_id(0)
    c = tl.arange(0, BLOCK)
    ok = c < N
    x = tl.load(x_ptr + m * stride + c, mask=ok, other=0.0).to(tl.float32)
    y = tl.load(y_ptr + m * stride + c, mask=ok, other=0.0).to(tl.float32)
    dtype = sum_ptr.dtype.element_ty
    s = (x + y).to(dtype)
    tl.store(sum_ptr + m * stride + c, s, mask=ok)
    s = s.to(tl.float32)
    mean = tl.sum(s, axis=0) / N
    centred = tl.where(ok, s - mean, 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=0) / N + eps)
    w = tl.load(w_ptr + c, mask=ok, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + c, mask=ok, other=0.0).to(tl.float32)
    tl.store(out_ptr + m * stride + c, (centred * rstd * w + b).to(dtype), mask=ok)


def add_norm(x: torch.Tensor, y: torch.Tensor, norm: torch.nn.LayerNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """(x + y, norm(x + y)) for x, y [M, C] (rows contiguous), in one kernel."""
    assert x.shape == y.shape and x.is_contiguous() and y.is_contiguous()
    m, n = x.shape
    total, out = torch.empty_like(x), torch.empty_like(x)
    block = triton.next_power_of_2(n)
    _add_norm_kernel[(m,)](
        x, y, norm.weight, norm.bias, total, out, n, x.stride(0), norm.eps, BLOCK=block,
        num_warps=4 if block <= 2048 else 8,
    )  # fmt: skip
    return total, out


def _linear_gelu(x: torch.Tensor, layer: torch.nn.Linear) -> torch.Tensor:
    """GPT-2's gelu_new(layer(x)) for x [M, K]: on a GPU, GELU (tanh form) in the GEMM's epilogue."""
    assert layer.bias is not None
    if x.device.type == "cuda":  # (CUDA's epilogue and its fallback use the tanh form; the CPU's, erf)
        return torch._addmm_activation(layer.bias, x, layer.weight.t(), use_gelu=True)
    return F.gelu(layer(x), approximate="tanh")


def prefill(gpt: GPT, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole prompts emb [B, P, C] (right-padded to a common P) with an empty cache, as
    `GPT.prefill`. -> (hidden states after ln_f [B, P, C]; every layer's q, k, v [L, B, P, 3, H, D],
    whose keys and values the caller places in its cache)."""
    b, p, c = emb.shape
    blocks = gpt.blocks
    heads = blocks[0].attn.heads
    x = emb.reshape(b * p, c).contiguous()  # (no copy when it already is)
    h = blocks[0].ln_1(x)
    qkv = x.new_empty((len(blocks), b * p, 3 * c))
    for i, block in enumerate(blocks):
        attn = block.attn.c_attn
        torch.addmm(attn.bias, h, attn.weight.t(), out=qkv[i])
        # q, k, v [B, H, P, D]: strided views of qkv, which attention reads in place.
        q, k, v = (t.transpose(1, 2) for t in qkv[i].view(b, p, 3, heads, -1).unbind(2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # scale 1/sqrt(D), as GPT-2
        y = y.transpose(1, 2).reshape(b * p, c)  # (a view when attention's output is [B, P, H, D])
        x, h = add_norm(x, block.attn.c_proj(y), block.ln_2)
        after = blocks[i + 1].ln_1 if i + 1 < len(blocks) else gpt.transformer.ln_f
        x, h = add_norm(x, block.mlp.c_proj(_linear_gelu(h, block.mlp.c_fc)), after)
    return h.view(b, p, c), qkv.view(len(blocks), b, p, 3, heads, -1)
