"""The standard workload of shared/PERFORMANCE.md, shared by our benchmark and the reference's."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

TEXT = "This is a test of the real-time text-to-speech synthesis system."
LANGUAGE = "en"
TOKENS = 86  # forced audio tokens: 3.99 s of 24 kHz audio
CHUNK = 20  # stream_chunk_size
SAMPLE_RATE = 24000
STUDIO_VOICE = "Ana Florence"  # conditioning cached beforehand, as a server does


def time_stream(
    make_stream: Callable[[], Iterable[Any]], samples_of: Callable[[Any], int]
) -> dict[str, float]:
    """Run one streamed synthesis; TTFA is from the call to the first chunk with audio."""
    started = time.perf_counter()
    ttfa = None
    samples = 0
    chunks = 0
    for chunk in make_stream():
        n = samples_of(chunk)
        if n and ttfa is None:
            ttfa = time.perf_counter() - started
        samples += n
        chunks += 1
    total = time.perf_counter() - started
    audio_s = samples / SAMPLE_RATE
    return {
        "ttfa_s": ttfa or total,
        "total_s": total,
        "audio_s": audio_s,
        "rtf": total / audio_s,
        "chunks": chunks,
    }


def summarize(runs: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in ("ttfa_s", "total_s", "rtf"):
        values = [r[key] for r in runs]
        out[f"{key}_median"] = statistics.median(values)
        out[f"{key}_min"] = min(values)
        out[f"{key}_max"] = max(values)
    out["audio_s"] = runs[0]["audio_s"]
    out["chunks"] = runs[0]["chunks"]
    out["runs"] = len(runs)
    return out


def time_ours(tts: Any, runs: int) -> dict[str, Any]:
    """Our XTTS.stream on the workload (same seed every run): a warm-up, then `runs` timed runs."""
    voice = tts.studio_voice(STUDIO_VOICE)

    def stream() -> Iterable[Any]:
        return tts.stream(
            TEXT,
            LANGUAGE,
            voice,
            stream_chunk_size=CHUNK,
            seed=0,
            min_new_tokens=TOKENS,
            max_new_tokens=TOKENS,
        )

    def samples(chunk: Any) -> int:
        return len(chunk.audio)  # stream() moved it to the CPU: the device has finished it

    warmup = time_stream(stream, samples)
    return {"warmup": warmup, **summarize([time_stream(stream, samples) for _ in range(runs)])}


def full_model_on_gpu(model_dir: Path, dtype: str) -> Any:
    """Our XTTS on the GPU, from the random full-size checkpoint in model_dir (made there first
    when missing, as on a fresh GPU machine)."""
    import torch

    from xtts_server import XTTS
    from xtts_server.random_model import make_test_model

    if not (model_dir / "model.pth").is_file():
        make_test_model(model_dir, "full", seed=0)
    return XTTS.load(model_dir, device="cuda", dtype=getattr(torch, dtype))


# Modules whose settings `--set` may change, by short name.
SETTABLE = {
    "engine": "xtts_server.engine.engine",
    "fused_decode": "xtts_server.model.fused_decode",
    "fused_sampler": "xtts_server.engine.fused_sampler",
    "hifigan": "xtts_server.model.hifigan",
    "runner": "xtts_server.engine.runner",
}


def current_settings(names: set[str]) -> list[str]:
    """The `--set` pairs that would restore these settings (`module.NAME`) to their values now."""
    import importlib

    pairs = []
    for name in sorted(names):
        module, _, attr = name.partition(".")
        pairs.append(f"{name}={getattr(importlib.import_module(SETTABLE[module]), attr)!r}")
    return pairs


def apply_settings(pairs: list[str]) -> dict[str, str]:
    """Benchmarks' `--set module.NAME=value` (value a Python literal), e.g.
    `--set fused_decode.ATTEND_CONFIG=(256,4)`: kernel settings tried against the defaults in one
    lease. Applied before the engine starts (its graphs capture them). -> what was set."""
    import ast
    import importlib

    applied = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        module, _, attr = name.partition(".")
        target = importlib.import_module(SETTABLE[module])
        if not hasattr(target, attr):
            raise SystemExit(f"--set: {SETTABLE[module]} has no {attr}")
        setattr(target, attr, ast.literal_eval(value))
        applied[name] = value
    return applied
