"""The GPT's whole decode step (embedding, 30 blocks, ln_f, final_norm, audio head) in ONE
persistent Triton kernel, for batches of up to 16 rows on a GPU.

Why: the five-kernels-a-layer step (`fused_decode`) launches ~155 kernels of a few microseconds
each; at batch 1 a step took 0.95 ms on an H200 against the 0.16 ms its 0.75 GB of weights take to
read. Most of that is per-kernel latency: a launch, a ramp, a tail, and nothing overlapping the
next kernel's weight reads. Here one program per multiprocessor stays resident for the whole step
and walks the same phases,

    x   = emb(code) + pos_emb(step)                                     (embedding)
    per layer:
      qkv = LN_1(x) @ W_attn + b                                          phase 1
      y   = attention(qkv, cache)   (writes this token's key and value)   phase 2
      x   = x + y @ W_proj + b                                            phase 3
      h   = gelu(LN_2(x) @ W_fc + b)                                      phase 4
      x   = x + h @ W_mlp + b                                             phase 5
    latent = final_norm(ln_f(x)); logits = latent @ W_head + b          (head)

with a grid-wide barrier between phases (an atomic counter per barrier; every phase needs whole
rows of the one before). A phase's work items (a tile of output columns, or a K range of one:
`linear_tile`; a (row, head, chunk) of attention: `attend_item`) are dealt round-robin to the
programs. The tiles, their numerics and their batch invariance are `fused_decode`'s: the same
functions run here.

Barriers. Counter i counts programs that reached barrier i; a program waits until it reads G (the
grid). Program 0 zeroes counter i - 1 once past barrier i (everyone has left barrier i - 1 by
then) and the last counter at the start of the next launch, so counters are zero between
launches, including in CUDA graphs. Every program must be resident at once: the grid is at most
one program per multiprocessor. Under Triton's interpreter (the CPU tests) programs run one after
another, so the grid there is 1 and every barrier passes at once.

Weights. A program indexes layer l's weights as base + l * stride, so each kind of parameter is
one [L, ...] tensor: `stacked` makes it and points the blocks' parameters at its slices (no copy
kept, the model unchanged otherwise).
"""

from __future__ import annotations

import math
import operator
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import triton
import triton.language as tl

from xtts_server.model import fused_decode
from xtts_server.model.fused_decode import BLOCK_M, attend_item, linear_tile

if TYPE_CHECKING:
    from xtts_server.model.gpt import GPT


@triton.jit
def _sync(bar_ptr, i, G, pid):
    """Grid-wide barrier i: every earlier write of every program is visible after it."""
    tl.debug_barrier()  # this program's threads have all stored: the count below releases them
    seen = tl.atomic_add(bar_ptr + i, 1, sem="acq_rel") + 1
    while seen < G:
        seen = tl.atomic_add(bar_ptr + i, 0, sem="acquire")
    tl.debug_barrier()
    if (pid == 0) & (i > 0):
        tl.store(bar_ptr + i - 1, 0)  # everyone is past barrier i - 1


@triton.jit
def _linear_phase(
    pid, G, M, x_ptr, w_ptr, b_ptr, res_ptr, ln_w_ptr, ln_b_ptr, ln2_w_ptr, ln2_b_ptr, norm_out_ptr,
    out_ptr, part_ptr, count_ptr, eps, eps2,
    N: tl.constexpr, K: tl.constexpr, LN: tl.constexpr, GELU: tl.constexpr, RESIDUAL: tl.constexpr,
    IEEE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    SPLIT_K: tl.constexpr, K_ROW: tl.constexpr,
):  # fmt: skip
    """All tiles of one linear over rows [0, M) (< BLOCK_M), dealt round-robin: item = tile *
    SPLIT_K + split. Row-major activations, `x` K wide, `out` and `res` N wide."""
    n_tiles: tl.constexpr = (N + BLOCK_N - 1) // BLOCK_N
    k_split: tl.constexpr = ((K + SPLIT_K - 1) // SPLIT_K + BLOCK_K - 1) // BLOCK_K * BLOCK_K
    for item in range(pid, n_tiles * SPLIT_K, G):
        linear_tile(
            item // SPLIT_K, 0, item % SPLIT_K, n_tiles, x_ptr, w_ptr, b_ptr, res_ptr, ln_w_ptr,
            ln_b_ptr, ln2_w_ptr, ln2_b_ptr, norm_out_ptr, out_ptr, part_ptr, count_ptr, M, N, K, K,
            K, N, N, eps, eps2, k_split, LN=LN, GELU=GELU, RESIDUAL=RESIDUAL, IEEE=IEEE,
            BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K, K_ROW=K_ROW, SPLIT_K=SPLIT_K,
        )  # fmt: skip


@triton.jit
def _step_kernel(
    codes_ptr, step_ptr, pos_ptr, max_step, emb_ptr, emb_pos_ptr,
    ln1_w, ln1_b, attn_w, attn_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, mlp_w, mlp_b,
    lnf_w, lnf_b, fin_w, fin_b, head_w, head_b,
    kv_ptr, stride_kv_l, stride_kv_j, stride_kv_r, stride_kv_h, stride_kv_s,
    x_ptr, qkv_ptr, y_ptr, h_ptr, latent_ptr, logits_ptr, part_ptr, attn_part_ptr, count_ptr, bar_ptr,
    M, L, G, eps, eps_f, eps_fin, scale, attn_splits,
    C: tl.constexpr, C_ROW: tl.constexpr, H: tl.constexpr, FF: tl.constexpr, V: tl.constexpr,
    D: tl.constexpr,
    CHUNK: tl.constexpr, SPLITS: tl.constexpr, IEEE: tl.constexpr, BLOCK_M: tl.constexpr,
    QKV_N: tl.constexpr, QKV_K: tl.constexpr, QKV_S: tl.constexpr,
    PROJ_N: tl.constexpr, PROJ_K: tl.constexpr, PROJ_S: tl.constexpr,
    FC_N: tl.constexpr, FC_K: tl.constexpr, FC_S: tl.constexpr,
    MLP_N: tl.constexpr, MLP_K: tl.constexpr, MLP_S: tl.constexpr,
    HEAD_N: tl.constexpr, HEAD_K: tl.constexpr, HEAD_S: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    last_barrier = 5 * L
    if pid == 0:
        tl.store(bar_ptr + last_barrier, 0)  # the previous launch's last barrier (see the module doc)

    # Embedding: x[r] = mel_embedding[code] + mel_pos_embedding[step], rounded as torch's add.
    cc = tl.arange(0, C_ROW)
    for r in range(pid, M, G):
        code = tl.load(codes_ptr + r)
        k = tl.minimum(tl.load(step_ptr + r), max_step)
        e = tl.load(emb_ptr + code * C + cc, mask=cc < C, other=0.0).to(tl.float32)
        e += tl.load(emb_pos_ptr + k * C + cc, mask=cc < C, other=0.0).to(tl.float32)
        tl.store(x_ptr + r * C + cc, e.to(x_ptr.dtype.element_ty), mask=cc < C)
    _sync(bar_ptr, 0, G, pid)

    for layer in range(L):
        i = 1 + 5 * layer
        c1 = layer * C
        _linear_phase(
            pid, G, M, x_ptr, attn_w + layer * (3 * C * C), attn_b + layer * (3 * C), x_ptr,
            ln1_w + c1, ln1_b + c1, ln1_w, ln1_b, x_ptr, qkv_ptr, part_ptr, count_ptr, eps, eps,
            N=3 * C, K=C, LN=1, GELU=False, RESIDUAL=False, IEEE=IEEE, BLOCK_M=BLOCK_M,
            BLOCK_N=QKV_N, BLOCK_K=QKV_K, SPLIT_K=QKV_S, K_ROW=C_ROW,
        )  # fmt: skip
        _sync(bar_ptr, i, G, pid)
        kv = kv_ptr + layer * stride_kv_l
        for item in range(pid, M * H * attn_splits, G):
            attend_item(
                item // (H * attn_splits), (item // attn_splits) % H, item % attn_splits, qkv_ptr,
                kv, pos_ptr, y_ptr, attn_part_ptr, count_ptr, C, H, 3 * C, stride_kv_j,
                stride_kv_r, stride_kv_h, stride_kv_s, C, scale, D, CHUNK, SPLITS,
            )  # fmt: skip
        _sync(bar_ptr, i + 1, G, pid)
        _linear_phase(
            pid, G, M, y_ptr, proj_w + layer * (C * C), proj_b + c1, x_ptr, ln1_w, ln1_b, ln1_w,
            ln1_b, x_ptr, x_ptr, part_ptr, count_ptr, eps, eps,
            N=C, K=C, LN=0, GELU=False, RESIDUAL=True, IEEE=IEEE, BLOCK_M=BLOCK_M,
            BLOCK_N=PROJ_N, BLOCK_K=PROJ_K, SPLIT_K=PROJ_S, K_ROW=C_ROW,
        )  # fmt: skip
        _sync(bar_ptr, i + 2, G, pid)
        _linear_phase(
            pid, G, M, x_ptr, fc_w + layer * (FF * C), fc_b + layer * FF, x_ptr, ln2_w + c1,
            ln2_b + c1, ln2_w, ln2_b, x_ptr, h_ptr, part_ptr, count_ptr, eps, eps,
            N=FF, K=C, LN=1, GELU=True, RESIDUAL=False, IEEE=IEEE, BLOCK_M=BLOCK_M,
            BLOCK_N=FC_N, BLOCK_K=FC_K, SPLIT_K=FC_S, K_ROW=C_ROW,
        )  # fmt: skip
        _sync(bar_ptr, i + 3, G, pid)
        _linear_phase(
            pid, G, M, h_ptr, mlp_w + layer * (C * FF), mlp_b + c1, x_ptr, ln1_w, ln1_b, ln1_w,
            ln1_b, x_ptr, x_ptr, part_ptr, count_ptr, eps, eps,
            N=C, K=FF, LN=0, GELU=False, RESIDUAL=True, IEEE=IEEE, BLOCK_M=BLOCK_M,
            BLOCK_N=MLP_N, BLOCK_K=MLP_K, SPLIT_K=MLP_S, K_ROW=C_ROW,
        )  # fmt: skip
        _sync(bar_ptr, i + 4, G, pid)

    # The head: logits = final_norm(ln_f(x)) @ W_head + b; the tiles of column 0 store the latent.
    _linear_phase(
        pid, G, M, x_ptr, head_w, head_b, x_ptr, lnf_w, lnf_b, fin_w, fin_b, latent_ptr, logits_ptr,
        part_ptr, count_ptr, eps_f, eps_fin,
        N=V, K=C, LN=2, GELU=False, RESIDUAL=False, IEEE=IEEE, BLOCK_M=BLOCK_M,
        BLOCK_N=HEAD_N, BLOCK_K=HEAD_K, SPLIT_K=HEAD_S, K_ROW=C_ROW,
    )  # fmt: skip


@dataclass(frozen=True)
class StepConfig:
    """A phase's tile, (BLOCK_N, BLOCK_K, SPLIT_K): None takes `fused_decode.tiles` of its weight,
    which keeps this step's results bit for bit those of the five-kernel step (so a stream gets the
    same codes whichever step serves it); a tile given here (a benchmark's sweep) loses that. A
    phase has (N / BLOCK_N) * SPLIT_K work items, about one a multiprocessor at best (132 on an
    H100/H200). Functions of the shapes alone, never of the batch (batch invariance)."""

    qkv: tuple[int, int, int] | None = None
    proj: tuple[int, int, int] | None = None
    fc: tuple[int, int, int] | None = None
    mlp: tuple[int, int, int] | None = None
    head: tuple[int, int, int] | None = None
    stages: int = 2


def _interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def stacked(params: list[torch.nn.Parameter]) -> torch.Tensor:
    """One [L, ...] tensor whose slices are `params` (same shapes): a view when they already are
    consecutive slices of one (a second engine on the same model), else a new tensor that the
    parameters are pointed at (their old storage is freed)."""
    first = params[0]
    step = first.numel()
    if all(
        p.untyped_storage().data_ptr() == first.untyped_storage().data_ptr()
        and p.storage_offset() == first.storage_offset() + i * step
        and p.shape == first.shape
        and p.is_contiguous()
        for i, p in enumerate(params)
    ):
        return first.detach().as_strided((len(params), *first.shape), (step, *first.stride()))
    with torch.no_grad():
        out = torch.stack([p.detach() for p in params])
        for p, view in zip(params, out, strict=True):
            p.data = view
    return out


class PersistentDecoder:
    """The decode step of `gpt` for up to BLOCK_M rows in one kernel launch, with its scratch."""

    max_rows = BLOCK_M

    def __init__(self, gpt: GPT, device: torch.device, config: StepConfig | None = None) -> None:
        self.gpt = gpt
        self.config = config or StepConfig()
        a = gpt.args
        blocks = gpt.blocks
        self.layers = len(blocks)
        self.dim, self.heads, self.vocab = a.gpt_n_model_channels, a.gpt_n_heads, a.gpt_num_audio_tokens
        self.ff = blocks[0].mlp.c_fc.weight.shape[0]
        self.dtype = gpt.text_embedding.weight.dtype

        # The kernel's argument order: [L, ...] tensors of each block parameter.
        self.w = [
            stacked([operator.attrgetter(name)(b) for b in blocks])
            for name in ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                         "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                         "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias")
        ]  # fmt: skip
        eps = {blk.ln_1.eps for blk in blocks} | {blk.ln_2.eps for blk in blocks}
        assert len(eps) == 1, "one LayerNorm epsilon for every block"
        self.eps = eps.pop()
        # One program a multiprocessor: all resident at once, as the barriers need (a second one
        # a multiprocessor did not fit: 255 registers and 132 KB of shared memory a program on an
        # H200). One under the interpreter, which runs programs in turn.
        self.grid = 1 if _interpreted() else torch.cuda.get_device_properties(device).multi_processor_count
        m, c = BLOCK_M, self.dim
        cfg = self.config
        shapes = {
            "qkv": (3 * c, c),
            "proj": (c, c),
            "fc": (self.ff, c),
            "mlp": (c, self.ff),
            "head": (self.vocab, c),
        }
        self.tiles: dict[str, tuple[int, int, int]] = {}
        warps = set()
        for name, (n, k) in shapes.items():
            given = getattr(cfg, name)
            block_n, block_k, w, _, split = fused_decode.tiles(n, k)
            self.tiles[name] = given if given is not None else (block_n, block_k, split)
            warps.add(w)
        # (The five-kernel step's warps shape its reductions: the same count keeps the same bits.)
        assert len(warps) == 1 and fused_decode.ATTEND_CONFIG[1] in warps, "one warp count for every tile"
        self.warps = warps.pop()
        self.chunk = fused_decode.ATTEND_CONFIG[0]

        def scratch(*shape: int, dtype: torch.dtype = self.dtype) -> torch.Tensor:
            return torch.zeros(shape, dtype=dtype, device=device)

        self.x, self.qkv, self.y = scratch(m, c), scratch(m, 3 * c), scratch(m, c)
        self.h, self.latent, self.logits = scratch(m, self.ff), scratch(m, c), scratch(m, self.vocab)
        parts = max(triton.cdiv(shapes[name][0], bn) * s * m * bn for name, (bn, _, s) in self.tiles.items())
        self.part = scratch(parts, dtype=torch.float32)
        self.counters = scratch(1 << 16, dtype=torch.int32)  # split-K tiles and attention heads
        self.barriers = scratch(5 * self.layers + 1, dtype=torch.int32)
        self._attn_part: torch.Tensor | None = None

    def step(
        self, codes: torch.Tensor, step: torch.Tensor, pos: torch.Tensor, kv: torch.Tensor, max_step: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows [0, B) (B <= 16): embed code codes[r] at audio position min(step[r], max_step), run
        the stack writing its key and value at pos[r] of cache rows [0, B) of kv [L, 2, R, H, S, D],
        attending to [0, pos[r]]. -> (latent [B, dim], logits [B, vocab]) in the model's dtype
        (views of this decoder's scratch: read them before the next step)."""
        b = codes.shape[0]
        assert b <= BLOCK_M and kv.stride(-1) == 1
        gpt, t = self.gpt, self.tiles
        d = self.dim // self.heads
        seq = kv.shape[4]
        splits = triton.cdiv(seq, self.chunk)
        if self._attn_part is None or self._attn_part.shape[0] < BLOCK_M * self.heads * splits:
            pow2 = triton.next_power_of_2(splits)
            self._attn_part = torch.empty(
                (BLOCK_M * self.heads * pow2, d + 2), dtype=torch.float32, device=kv.device
            )
        w = self.w
        _step_kernel[(self.grid,)](
            codes, step, pos, max_step, gpt.mel_embedding.weight, gpt.mel_pos_embedding.weight,
            *w, gpt.transformer.ln_f.weight, gpt.transformer.ln_f.bias, gpt.final_norm.weight,
            gpt.final_norm.bias, gpt.mel_head.weight, gpt.mel_head.bias,
            kv, kv.stride(0), kv.stride(1), kv.stride(2), kv.stride(3), kv.stride(4),
            self.x, self.qkv, self.y, self.h, self.latent, self.logits, self.part, self._attn_part,
            self.counters, self.barriers,
            b, self.layers, self.grid, self.eps, gpt.transformer.ln_f.eps, gpt.final_norm.eps,
            1.0 / math.sqrt(d), splits,
            C=self.dim, C_ROW=triton.next_power_of_2(self.dim), H=self.heads, FF=self.ff, V=self.vocab,
            D=d, CHUNK=self.chunk,
            SPLITS=triton.next_power_of_2(splits), IEEE=self.dtype == torch.float32, BLOCK_M=BLOCK_M,
            QKV_N=t["qkv"][0], QKV_K=t["qkv"][1], QKV_S=t["qkv"][2],
            PROJ_N=t["proj"][0], PROJ_K=t["proj"][1], PROJ_S=t["proj"][2],
            FC_N=t["fc"][0], FC_K=t["fc"][1], FC_S=t["fc"][2],
            MLP_N=t["mlp"][0], MLP_K=t["mlp"][1], MLP_S=t["mlp"][2],
            HEAD_N=t["head"][0], HEAD_K=t["head"][1], HEAD_S=t["head"][2],
            num_warps=self.warps, num_stages=self.config.stages,
        )  # fmt: skip
        return self.latent[:b], self.logits[:b]
