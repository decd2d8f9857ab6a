"""A vocoder batch's generator frames (`WindowBatch.frames`) in one Triton kernel per interpolation
stage instead of ~11 small operations each.

Why: a batch's frames are the latents gathered from the rows' history, then each stage's linear
interpolation (`vocoder_stream.mix`: two gathers, float32 weights, a rounding), then the padding
masked and the result copied, transposed, into the generator's input: about 33 kernels for the
usual three stages, each a few microseconds in the vocoder's graph, ahead of the generator and so
on the first audio's path. Here stage 0 reads the history itself and the last stage writes the
generator's input: three kernels.

Same arithmetic as `mix` in the same order, x[i0] * (1 - lam) + x[i1] * lam in float32, rounded to
the history's dtype after every stage (and then to the generator's, as the copy did), compiled
without fused multiply-adds (torch runs the products and the sum as separate kernels): the same
bits as `WindowBatch.frames`.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from xtts_server.engine.vocoder_batch import WindowBatch


@triton.jit
def _stage_kernel(
    src_ptr, rows_ptr, pos_ptr, i0_ptr, i1_ptr, lam_ptr, valid_ptr, dst_ptr,
    C, stride_src_row, stride_src_pos, stride_dst_b, stride_dst_c,
    FRAMES: tl.constexpr, FIRST: tl.constexpr, LAST: tl.constexpr, BLOCK_C: tl.constexpr,
):  # fmt: skip
    """Output entry n of one stage (one program, all channels): dst[n] = mix of src entries i0[n]
    and i1[n] with weight lam[n]. FIRST: src is the history [rows, positions, C] and entry e is
    (rows[e], pos[e]); else src is the previous stage's [entries, C] (row stride C). LAST: dst is
    the generator input [b, C, f] (entry n = window n // FRAMES, frame n % FRAMES), zero where
    valid[n] is 0; else dst is [entries, C] in src's dtype."""
    n = tl.program_id(0)
    c = tl.arange(0, BLOCK_C)
    c_ok = c < C
    a = tl.load(i0_ptr + n)
    b = tl.load(i1_ptr + n)
    lam = tl.load(lam_ptr + n)
    if FIRST:
        src_a = src_ptr + tl.load(rows_ptr + a) * stride_src_row + tl.load(pos_ptr + a) * stride_src_pos
        src_b = src_ptr + tl.load(rows_ptr + b) * stride_src_row + tl.load(pos_ptr + b) * stride_src_pos
    else:
        src_a = src_ptr + a * C
        src_b = src_ptr + b * C
    xa = tl.load(src_a + c, mask=c_ok, other=0.0).to(tl.float32)
    xb = tl.load(src_b + c, mask=c_ok, other=0.0).to(tl.float32)
    y = (xa * (1.0 - lam) + xb * lam).to(src_ptr.dtype.element_ty)
    if LAST:
        y = tl.where(tl.load(valid_ptr + n) != 0, y, 0.0)
        dst = dst_ptr + (n // FRAMES) * stride_dst_b + c * stride_dst_c + n % FRAMES
        tl.store(dst, y.to(dst_ptr.dtype.element_ty), mask=c_ok)
    else:
        tl.store(dst_ptr + n * C + c, y, mask=c_ok)


def frames_into(
    layout: WindowBatch, hist: torch.Tensor, ints: torch.Tensor, floats: torch.Tensor, out: torch.Tensor
) -> None:
    """out [b, C, f] (the generator's input, any float dtype) = `layout.frames(hist, ints,
    floats)` transposed, from the history hist [rows, positions, C] and the uploaded arrays."""
    b, f, caps, o = layout.b, layout.f, layout.caps, layout.ints
    channels = hist.shape[-1]
    assert hist.stride(-1) == 1 and out.stride(-1) == 1 and out.shape == (b, channels, f)
    assert ints.is_contiguous() and floats.is_contiguous()
    src = hist
    for level in range(layout.depth):
        first, last = level == 0, level == layout.depth - 1
        n = b * caps[level + 1]
        i0, i1 = ints[o[f"i0_{level}"] :], ints[o[f"i1_{level}"] :]
        lam = floats[layout.floats[f"lam_{level}"] :]
        dst = out if last else torch.empty((n, channels), dtype=hist.dtype, device=hist.device)
        _stage_kernel[(n,)](
            src, ints[o["rows"] :], ints[o["pos"] :], i0, i1, lam, ints[o["valid"] :], dst,
            channels, hist.stride(0) if first else 0, hist.stride(1) if first else 0,
            dst.stride(0), dst.stride(1) if last else 0,
            FRAMES=f, FIRST=first, LAST=last, BLOCK_C=triton.next_power_of_2(channels),
            num_warps=4, enable_fp_fusion=False,
        )  # fmt: skip
        src = dst
