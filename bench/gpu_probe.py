"""First look at the eager single-stream path on a GPU (before the batching engine of issue 6).

    python bench/gpu_probe.py [--dtype float32|bfloat16|float16]

Makes the full-size random checkpoint, then times the standard workload (86 forced tokens, chunk 20)
with XTTS.stream on CUDA: TTFA, total, and the mean decode-step time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from workload import LANGUAGE, STUDIO_VOICE, TEXT, TOKENS, time_ours


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/full-seed0"))
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from xtts_server import XTTS
    from xtts_server.inference.generation import generate
    from xtts_server.random_model import make_test_model

    if not (args.model_dir / "model.pth").is_file():
        started = time.perf_counter()
        make_test_model(args.model_dir, "full", seed=0)
        print(f"made checkpoint in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    dtype = getattr(torch, args.dtype)
    tts = XTTS.load(args.model_dir, device="cuda", dtype=dtype)
    result = time_ours(tts, args.runs)
    voice = tts.studio_voice(STUDIO_VOICE)
    # decode step alone
    gpt = tts.model.gpt
    ids = tts._text_ids(TEXT, LANGUAGE)
    from xtts_server.inference.sampling import SamplingParams

    with torch.inference_mode():
        prompt = gpt.prompt(voice.gpt_cond_latent.to(dtype), ids)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        steps = list(generate(gpt, prompt, SamplingParams(), max_new_tokens=TOKENS, min_new_tokens=TOKENS))
        torch.cuda.synchronize()
        gen_s = time.perf_counter() - t0
    print(json.dumps({
        "device": torch.cuda.get_device_name(), "torch": torch.__version__, "dtype": args.dtype,
        **result, "gpt_only_s": gen_s, "per_step_ms": 1000 * gen_s / len(steps),
        "max_mem_gb": torch.cuda.max_memory_allocated() / 1e9,
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
