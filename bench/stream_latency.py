"""Single-stream latency on the standard workload: ours and the reference, side by side.

    python bench/stream_latency.py --model-dir DIR [--reference-python /path/to/oracle/bin/python]

Without --model-dir a full-size random checkpoint is made (seed 0) under ~/.cache/xtts-server-bench.
The same checkpoint, text, studio voice, forced token count (86) and chunk size (20) go to both.
Prints a JSON summary (and writes it with --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from workload import CHUNK, STUDIO_VOICE, TEXT, TOKENS, time_ours


def default_model_dir() -> Path:
    from xtts_server.random_model import make_test_model

    path = Path.home() / ".cache" / "xtts-server-bench" / "full-seed0"
    if not (path / "model.pth").is_file():
        make_test_model(path, "full", seed=0)
    return path


def ours(model_dir: Path, runs: int, device: str) -> dict[str, object]:
    from xtts_server import XTTS

    tts = XTTS.load(model_dir, device=device)
    return {"impl": "xtts-server", **time_ours(tts, runs)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reference-python", help="python of a venv with coqui-tts installed")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    model_dir = args.model_dir or default_model_dir()

    result: dict[str, object] = {
        "workload": {"text": TEXT, "tokens": TOKENS, "chunk": CHUNK, "voice": STUDIO_VOICE},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "device": args.device},
        "model": {"dir": str(model_dir), "size": "full (466.9 M parameters)", "weights": "random",
                  "dtype": "float32"},
    }  # fmt: skip
    result["ours"] = ours(model_dir, args.runs, args.device)
    if args.reference_python:
        script = Path(__file__).parent / "reference_stream.py"
        cmd = [
            args.reference_python,
            str(script),
            str(model_dir),
            "--runs",
            str(args.runs),
            "--device",
            args.device,
        ]
        completed = subprocess.run(cmd, check=True, capture_output=True, text=True)
        reference = json.loads(completed.stdout.strip().splitlines()[-1])
        result["reference"] = reference
        mine = result["ours"]
        assert isinstance(mine, dict)
        result["speedup"] = {
            "ttfa": reference["ttfa_s_median"] / mine["ttfa_s_median"],
            "total": reference["total_s_median"] / mine["total_s_median"],
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
