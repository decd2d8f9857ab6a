"""Helpers shared by the engine's CPU tests (tests/engine) and GPU tests (tests/gpu)."""

from __future__ import annotations

import queue
from typing import Any

import numpy as np

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
