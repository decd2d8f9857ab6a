"""Time the reference implementation (coqui-tts, `Xtts.inference_stream`, fp32) on the standard
workload. Run with the oracle venv's python (see bench/stream_latency.py, which calls this):

    python bench/reference_stream.py MODEL_DIR --runs 3 --device cpu
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from workload import CHUNK, LANGUAGE, STUDIO_VOICE, TEXT, TOKENS, summarize, time_stream


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"  # the reference rewrites model.pth in place: use a copy
        shutil.copytree(args.model_dir, model_dir)
        config = XttsConfig()
        config.load_json(str(model_dir / "config.json"))
        model = Xtts.init_from_config(config)
        model.load_checkpoint(config, checkpoint_dir=str(model_dir), eval=True)
    model.to(args.device).eval()
    voice = torch.load(Path(args.model_dir) / "speakers_xtts.pth", weights_only=True)[STUDIO_VOICE]
    latent = voice["gpt_cond_latent"].to(args.device)
    speaker = voice["speaker_embedding"].to(args.device)

    def stream():  # type: ignore[no-untyped-def]
        return model.inference_stream(
            TEXT,
            LANGUAGE,
            latent,
            speaker,
            stream_chunk_size=CHUNK,
            min_new_tokens=TOKENS,
            max_new_tokens=TOKENS,
        )

    def samples(chunk: torch.Tensor) -> int:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return int(chunk.shape[-1])

    torch.manual_seed(0)
    warmup = time_stream(stream, samples)
    runs = [time_stream(stream, samples) for _ in range(args.runs)]
    print(
        json.dumps(
            {"impl": "coqui-tts " + __import__("TTS").__version__, "warmup": warmup, **summarize(runs)}
        )
    )


if __name__ == "__main__":
    main()
