"""The vocoder's residual blocks on parallel CUDA streams give the bits of the serial run, eagerly
and replayed from a CUDA graph (where the streams become parallel branches of the graph)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module", params=["float32", "float16"])
def decoder(request: pytest.FixtureRequest, tiny_model_dir: Path) -> Any:
    from xtts_server import XTTS

    tts = XTTS.load(tiny_model_dir, device="cuda", dtype=getattr(torch, request.param))
    return tts.model.hifigan_decoder


def _inputs(decoder: Any, batch: int, frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator(device="cuda").manual_seed(0)
    dtype = decoder.waveform_decoder.conv_pre.weight.dtype
    z = torch.randn(batch, decoder.args.decoder_input_dim, frames, device="cuda", generator=gen).to(dtype)
    g = torch.randn(batch, decoder.args.d_vector_dim, 1, device="cuda", generator=gen).to(dtype)
    lengths = torch.tensor([frames - 7 * i for i in range(batch)], device="cuda")
    return z, g, lengths


@pytest.mark.parametrize("masked", [False, True])
def test_parallel_blocks_equal_serial_blocks(decoder: Any, masked: bool) -> None:
    z, g, lengths = _inputs(decoder, 3, 96)
    gen = decoder.waveform_decoder
    try:
        gen.parallel = False
        serial = decoder.generate(z, g, lengths if masked else None)
        gen.parallel = True
        parallel = decoder.generate(z, g, lengths if masked else None)
    finally:
        gen.parallel = None
    torch.cuda.synchronize()
    assert torch.equal(serial, parallel)


def test_parallel_blocks_in_a_graph_equal_eager(decoder: Any) -> None:
    z, g, lengths = _inputs(decoder, 2, 64)
    gen = decoder.waveform_decoder
    gen.parallel = True
    try:
        static_z = z.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm up (cuDNN plans, Triton compiles) outside capture
            decoder.generate(static_z, g, lengths)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            static_out = decoder.generate(static_z, g, lengths)
        for seed in (1, 2):
            new_z = torch.randn(
                z.shape, device="cuda", generator=torch.Generator(device="cuda").manual_seed(seed)
            )
            static_z.copy_(new_z.to(z.dtype))
            graph.replay()
            eager = decoder.generate(static_z.clone(), g, lengths)
            torch.cuda.synchronize()
            assert torch.equal(static_out, eager), seed
    finally:
        gen.parallel = None
