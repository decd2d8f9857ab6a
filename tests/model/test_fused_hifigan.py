"""The vocoder's fused convolution epilogue (model/fused_hifigan.py) against the unfused code; in
Triton's interpreter without a GPU (tests/conftest.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_hifigan import narrow_decoder

from ray_helpers import import_triton

epilogue = import_triton("xtts_server.model.fused_hifigan").epilogue

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_epilogue_rounds_like_the_unfused_ops(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    b, c, length = 3, 48, 37  # 48 channels: a partly filled channel block
    y = _channels_last(torch.randn(b, c, 1, length, device=DEVICE).to(dtype))
    res = _channels_last(torch.randn(b, c, 1, length, device=DEVICE).to(dtype))
    bias = torch.randn(c, device=DEVICE).to(dtype)
    mask = (torch.arange(length, device=DEVICE) < torch.tensor([37, 20, 5], device=DEVICE)[:, None]).to(dtype)
    mask = mask[:, None, None]  # [B, 1, 1, L]
    biased = y + bias[:, None, None]
    x, act = epilogue(y, bias, 0.1, mask=mask)
    assert x is not None and act is not None
    assert torch.equal(x, biased)
    assert torch.equal(act, F.leaky_relu(biased, 0.1) * mask)
    x, act = epilogue(y, bias, 0.1, residual=res, want_act=False)
    assert act is None and x is not None
    assert torch.equal(x, biased + res)
    assert x.is_contiguous(memory_format=torch.channels_last)
    x, act = epilogue(y, bias, 0.01, residual=res, want_x=False)
    assert x is None and act is not None
    assert torch.equal(act, F.leaky_relu(biased + res, 0.01))


@pytest.mark.parametrize("masked", [False, True])
def test_fused_generator_equals_the_unfused_one(masked: bool) -> None:
    # The whole generator, channels-last, with and without the fused residual blocks. On a CPU the
    # unfused convolution adds its bias inside (rounded once, not twice): close, not equal.
    decoder = narrow_decoder().to(DEVICE)
    gen = decoder.waveform_decoder
    gen.channels_last = True
    z, g = torch.randn(3, 24, 40, device=DEVICE), torch.randn(3, 8, 1, device=DEVICE)
    lengths = torch.tensor([40, 31, 17], device=DEVICE) if masked else None
    with torch.no_grad():
        gen.fused = False
        want = decoder.generate(z, g, lengths)
        gen.fused = True
        got = decoder.generate(z, g, lengths)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
