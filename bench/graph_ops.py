"""How many kernels the engine's admission graph and a vocoder batch's frame building launch,
counted on any machine: the graphs' functions run once on the CPU, with the
GPU's configuration (fused prefill, fused sampler, fused frames) in Triton's interpreter, and every
torch operation that makes a kernel on a GPU (not views or allocations) and every Triton launch is
counted. On a GPU each is a kernel in the graph, a few microseconds on the first audio's path.

    python3 bench/graph_ops.py --model-dir /tmp/tiny          # (made here when missing: tiny model)
    PYTHONPATH=.baseline/src python3 bench/graph_ops.py ...   # an older tree's counts

Two trees' layers being the same, the difference of their admission counts is what changed outside
the transformer's layers.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

os.environ["TRITON_INTERPRET"] = "1"  # (the fused kernels, on the CPU)

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from triton.runtime import interpreter

# Operations (aten names without the overload) that make no kernel on a GPU: views, allocations,
# and the interpreter's own buffers.
NO_KERNEL = {"view", "_unsafe_view", "select", "slice", "unsqueeze", "squeeze", "transpose", "t", "expand",
             "reshape", "split", "split_with_sizes", "unbind", "permute", "alias", "detach", "as_strided",
             "empty", "empty_like", "empty_strided", "new_empty", "set_"}  # fmt: skip


def count(fn: Any) -> tuple[int, int, list[str]]:
    """Run fn once -> (torch kernels, Triton launches, their names in order)."""
    names: list[str] = []
    inside = [False]
    run = interpreter.InterpretedFunction.run

    def launch(self: Any, *a: Any, **kw: Any) -> Any:
        names.append("triton:" + self.fn.__name__)
        inside[0] = True  # (the interpreter's copies to and from numpy are not kernels)
        try:
            return run(self, *a, **kw)
        finally:
            inside[0] = False

    class Log(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            name = str(func)  # e.g. aten.index_select.default
            if not inside[0] and name.split(".")[1] not in NO_KERNEL:
                names.append(name)
            return func(*args, **(kwargs or {}))

    interpreter.InterpretedFunction.run = launch  # type: ignore[method-assign]
    try:
        with torch.inference_mode(), Log():
            fn()
    finally:
        interpreter.InterpretedFunction.run = run  # type: ignore[method-assign]
    triton_launches = sum(n.startswith("triton:") for n in names)
    return len(names) - triton_launches, triton_launches, names


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/tiny"))
    parser.add_argument("--prompt", type=int, default=96, help="the admission's prompt bucket")
    parser.add_argument("--frames", type=int, default=96, help="the window's frame bucket")
    parser.add_argument("--verbose", action="store_true", help="list the operations")
    args = parser.parse_args()
    from xtts_server import XTTS
    from xtts_server.engine.runner import Runner, RunnerConfig
    from xtts_server.random_model import make_test_model

    if not (args.model_dir / "model.pth").is_file():
        make_test_model(args.model_dir, "tiny", seed=0)
    tts = XTTS.load(args.model_dir, device="cpu", dtype=torch.float16)
    config = RunnerConfig.default(4, 602, 32 + 402 + 3, cuda_graphs=False, buckets=True, fused_batches=16,
                                  fused_sampler=True)  # fmt: skip
    runner = Runner(tts.model, config, torch.device("cpu"))
    _, _, names = count(runner._prefill_fn(1, args.prompt))
    layers = tts.model.gpt.args.gpt_layers
    print(f"admission graph (1 prompt of {args.prompt}, {layers} layers): {len(names)} kernels")
    if args.verbose:
        print(" ", names)
    runner._voc_upload(runner.voc_layouts[(1, args.frames)], [], [])
    frames = runner.voc_layouts[(1, args.frames)]
    hist, ints, floats = runner.hist, runner.voc_int, runner.voc_float
    if getattr(runner.config, "fused_frames", False):
        from xtts_server.engine import fused_frames

        out = torch.zeros(1, hist.shape[-1], args.frames, dtype=runner.voc_dtype)
        _, _, names = count(lambda: fused_frames.frames_into(frames, hist, ints, floats, out))
    else:  # (a tree before engine.fused_frames)
        _, _, names = count(lambda: runner.frames_in[:1, :, : args.frames].copy_(
            frames.frames(hist, ints, floats).transpose(1, 2)))  # fmt: skip
    print(f"a window's generator frames (1 x {args.frames}): {len(names)} kernels")
    if args.verbose:
        print(" ", names)


if __name__ == "__main__":
    main()
