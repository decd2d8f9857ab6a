"""The prefill in fewer kernels against the unfused model code. Without a GPU the add-and-LayerNorm
kernel runs in Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET=1); the GPU suite runs
the same comparison with the GEMM's GELU epilogue (tests/gpu/test_engine_gpu.py)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from engine_helpers import assert_close_scaled, prefill_matches_the_unfused_prefill
from ray_helpers import import_triton

fused_prefill = import_triton("xtts_server.model.fused_prefill")

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_add_norm_is_the_sum_and_its_layer_norm(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    x, y = (torch.randn(5, 96, device=DEVICE).to(dtype) for _ in range(2))  # 96: a row past no power of 2
    norm = torch.nn.LayerNorm(96, eps=1e-5).to(DEVICE, dtype)
    with torch.no_grad():
        norm.weight.normal_(1.0, 0.3)
        norm.bias.normal_(0.0, 0.3)
        total, out = fused_prefill.add_norm(x, y, norm)
        want = x + y  # (the unfused add: rounded to the dtype)
        assert torch.equal(total, want)
        assert_close_scaled(out, F.layer_norm(want, (96,), norm.weight, norm.bias, norm.eps))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_prefill_equals_the_unfused_prefill(tiny_model_dir: Any, dtype: torch.dtype) -> None:
    from xtts_server import XTTS

    gpt = XTTS.load(tiny_model_dir, device=DEVICE, dtype=dtype).model.gpt
    prefill_matches_the_unfused_prefill(gpt)
