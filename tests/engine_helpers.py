"""Helpers shared by the engine's CPU tests (tests/engine) and GPU tests (tests/gpu)."""

from __future__ import annotations

import queue
from typing import Any

import numpy as np
import torch

from xtts_server.engine import EngineRequest
from xtts_server.inference.sampling import SamplingParams

TEXTS = [
    "Hello there, how are you today?",
    "A second sentence that is a bit longer than the first one was.",
    "Short.",
    "The quick brown fox jumps over the lazy dog, twice.",
]


def make(tts: Any, text: str, sink: Any, do_sample: bool = True, **kw: Any) -> EngineRequest:
    """A request for `text` in the model's first studio voice; its outputs go to `sink`."""
    voice = tts.studio_voice(tts.studio_voices[0])
    return EngineRequest(
        tts.tokenize(text, "en"), voice.gpt_cond_latent, voice.speaker_embedding,
        SamplingParams(do_sample=do_sample), sink, **kw,
    )  # fmt: skip


def collect(q: queue.Queue[Any]) -> tuple[np.ndarray, tuple[int, ...]]:
    """A request's whole audio and codes from its output queue (raising its error)."""
    parts = []
    while True:
        out = q.get(timeout=120)
        if out.error is not None:
            raise out.error
        parts.append(out.audio)
        if out.done:
            return np.concatenate(parts), out.codes


def run_all(engine: Any, tts: Any, specs: list[dict[str, Any]]) -> list[tuple[np.ndarray, tuple[int, ...]]]:
    """Submit one request per spec (keyword arguments of `make`) together; wait for all."""
    queues = []
    for spec in specs:
        q: queue.Queue[Any] = queue.Queue()
        engine.submit(make(tts, sink=q.put, **spec))
        queues.append(q)
    return [collect(q) for q in queues]


def assert_close_scaled(got: torch.Tensor, want: torch.Tensor) -> None:
    """got within the dtype's tolerance of want, relative to want's largest magnitude (at least 1):
    float32 to rounding, half precision within its precision."""
    tolerance = 1e-5 if want.dtype == torch.float32 else 4e-3
    scale = want.float().abs().max().item()
    err = (got.float() - want.float()).abs().max().item()
    assert err <= tolerance * max(scale, 1.0), (err, scale)


def prefill_matches_the_unfused_prefill(gpt: Any) -> None:
    """Two right-padded prompts of different lengths: hidden states (after ln_f) and every layer's
    keys and values at each prompt's real positions, on the model's device. Its float32 must
    agree to rounding, float16 within its precision. (Run by the CPU suite and the GPU suite.)"""
    from xtts_server.model import fused_prefill

    dtype, device = gpt.mel_head.weight.dtype, gpt.mel_head.weight.device
    torch.manual_seed(3)
    latents = torch.randn(2, gpt.args.cond_latents, gpt.args.gpt_n_model_channels, device=device).to(dtype)
    ids = torch.randint(0, 200, (2, 12), device=device)
    lengths = torch.tensor([12, 5], device=device)
    with torch.inference_mode():
        prompts = gpt.prompts(latents, ids, lengths)  # [2, P, C]
        want_hidden, want_k, want_v = gpt.prefill(prompts)  # keys, values [L, B, H, P, D]
        hidden, qkv = fused_prefill.prefill(gpt, prompts)  # qkv [L, B, P, 3, H, D]
    keys, values = (qkv[:, :, :, j].transpose(2, 3) for j in (1, 2))
    for row, n in enumerate(int(t) + gpt.args.cond_latents + 3 for t in lengths):
        assert_close_scaled(hidden[row, :n], want_hidden[row, :n])
        assert_close_scaled(keys[:, row, :, :n], want_k[:, row, :, :n])
        assert_close_scaled(values[:, row, :, :n], want_v[:, row, :, :n])
