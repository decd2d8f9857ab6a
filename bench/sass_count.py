"""What each fused decode-step kernel does after its wait, from the code Triton compiles for an
H100 (sm_90), on any machine: no GPU needed (Triton's bundled ptxas and cuobjdump).

Under programmatic dependent launch a kernel's work before `griddepcontrol.wait` (SASS `ACQBULK`)
overlaps the previous kernel; what follows it is the kernel's share of the step's critical path.
Counted there: instructions, global loads (each a dependent memory round trip if in sequence),
barriers, and the longest chain of tensor-core MMAs that feed one another's accumulator.
Compiled with the JIT's specialisations in the batch-1 graph: pointers and integer arguments
that are multiples of 16 marked divisible by 16, M = 1 a constant.

    python3 bench/sass_count.py [--set fused_decode.MMA_CHAINS=4 ...]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

os.environ.pop("TRITON_INTERPRET", None)  # (this compiles for the GPU, whatever the shell says)

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from workload import apply_settings

TARGET = GPUTarget("cuda", 90, 32)
# The linear kernel's batch-1 launches in the step: (name, constexprs). K = 1,024 but MLP out's 4,096.
LINEARS = {
    "qkv (LN)": dict(LN=1, GELU=False, RESIDUAL=False, N=(3072, 1024), EARLY_RES=False),
    "attention out (+res)": dict(LN=0, GELU=False, RESIDUAL=True, N=(1024, 1024), EARLY_RES=True),
    "MLP in (LN, GELU)": dict(LN=1, GELU=True, RESIDUAL=False, N=(4096, 1024), EARLY_RES=False),
    "MLP out (+res)": dict(LN=0, GELU=False, RESIDUAL=True, N=(1024, 4096), EARLY_RES=True),
    "head (two LNs)": dict(LN=2, GELU=False, RESIDUAL=False, N=(1026, 1024), EARLY_RES=False),
}


def _attrs(fn: Any, names: list[str]) -> dict[tuple[int], list[list[Any]]]:
    return {(fn.arg_names.index(a),): [["tt.divisibility", 16]] for a in names}


def compile_linear(spec: dict[str, Any]) -> Any:
    from xtts_server.model import fused_decode as fd

    n, k = spec["N"]
    cfg = fd.linear_config(n, k, pdl=True, norm=spec["LN"] > 0)
    options = {"num_warps": cfg.pop("num_warps"), "num_stages": cfg.pop("num_stages")}
    cfg.pop("k_split")  # (a runtime argument)
    consts = dict(
        M=1, LN=spec["LN"], GELU=spec["GELU"], RESIDUAL=spec["RESIDUAL"], IEEE=False, BLOCK_M=fd.BLOCK_M,
        PDL=True, EARLY_RES=spec["EARLY_RES"], EMBED=False, **cfg,
    )  # fmt: skip
    fn = fd._linear_kernel
    types = {"part_ptr": "*fp32", "count_ptr": "*i32", "codes_ptr": "*i64", "step_ptr": "*i64",
             "eps": "fp32", "eps2": "fp32"}  # fmt: skip
    sig = {
        a: "constexpr" if a in consts else types.get(a, "*fp16" if a.endswith("_ptr") else "i32")
        for a in fn.arg_names
    }
    # (as the JIT: integers that are multiples of 16; the head's N = 1,026, also its output's stride)
    aligned = ["K", "k_split", "stride_x", "stride_w", "stride_res"] + (
        ["N", "stride_out"] if n % 16 == 0 else []
    )
    div16 = [a for a in fn.arg_names if a.endswith("_ptr") or a in aligned]
    source = ASTSource(fn, sig, constexprs=consts, attrs=_attrs(fn, div16))
    return triton.compile(source, target=TARGET, options=options)


def compile_sampler() -> Any:
    from xtts_server.engine import fused_sampler as fs

    ways, warps = fs.SEARCH
    fn = fs._choose_kernel
    consts: dict[str, Any] = dict(
        BLOCK=2048, BLOCK_DIM=1024, ADVANCE=True, WAYS=ways, PASSES=fs.search_passes(ways), PDL=True
    )
    # (the decode step's parameters are the rows' own contiguous tensors: the JIT takes stride 1)
    consts.update({a: 1 for a in fn.arg_names if a.startswith("s_")})
    floats = ("temperature_ptr", "top_p_ptr", "penalty_ptr")
    sig = {}
    for a in fn.arg_names:
        if a in consts:
            sig[a] = "constexpr"
        elif a in floats:
            sig[a] = "*fp32"
        elif a in ("seen_ptr", "do_sample_ptr"):
            sig[a] = "*u8"
        elif a in ("logits_ptr", "latent_ptr", "hist_ptr"):
            sig[a] = "*fp16"
        else:
            sig[a] = "*i64" if a.endswith("_ptr") else "i32"
    aligned = ("DIM", "stride_latent", "stride_hist_step")
    div16 = [a for a in fn.arg_names if a.endswith("_ptr") or a in aligned]
    source = ASTSource(fn, sig, constexprs=consts, attrs=_attrs(fn, div16))
    return triton.compile(source, target=TARGET, options=dict(num_warps=warps, num_stages=1))


def after_wait(kernel: Any) -> dict[str, int]:
    """Counts in the kernel's SASS from its first `ACQBULK` on."""
    tools = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / "k.cubin"
        cubin.write_bytes(kernel.asm["cubin"])

        def dump(flag: str) -> str:
            return subprocess.run([tools / "cuobjdump", flag, cubin], capture_output=True, text=True).stdout

        sass, usage = dump("-sass"), dump("-res-usage")
    code = [x.replace(".reuse", "").strip() for x in re.findall(r"/\*[0-9a-f]{4,}\*/\s+([^;]+);", sass)]
    start = next((i for i, x in enumerate(code) if x.startswith("ACQBULK")), 0)
    after = code[start:]
    depth: dict[str, int] = {}
    longest = 0
    for x in code:  # chains: an HMMA whose accumulator input is the previous one's output
        m = re.match(r"(?:@!?P\d\s+)?HMMA\.\S+\s+(R\d+),\s*R\d+,\s*R\d+,\s*(R\d+|RZ)", x)
        if m:
            depth[m.group(1)] = depth.get(m.group(2), 0) + 1
            longest = max(longest, depth[m.group(1)])
        elif (w := re.match(r"(?:@!?P\d\s+)?[A-Z0-9_.]+\s+(R\d+)", x)) and w.group(1) in depth:
            del depth[w.group(1)]  # (overwritten by something else)
    regs = re.search(r"REG:(\d+)", usage)
    return {
        "instructions_after_wait": len(after),
        "global_loads_after_wait": sum("LDG" in x for x in after),
        "barriers_after_wait": sum("BAR.SYNC" in x for x in after),
        "float64_after_wait": sum(bool(re.match(r"(?:@!?P\d\s+)?D(FMA|ADD|MUL)", x)) for x in after),
        "longest_mma_chain": longest,
        "registers": int(regs.group(1)) if regs else -1,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", action="append", default=[], metavar="MODULE.NAME=VALUE",
                        help="a kernel setting (workload.apply_settings), repeatable")  # fmt: skip
    args = parser.parse_args()
    print("settings:", apply_settings(args.set) or "defaults")
    rows = [(name, compile_linear(spec)) for name, spec in LINEARS.items()]
    rows.append(("sampler", compile_sampler()))
    for name, kernel in rows:
        print(f"{name:22s}", after_wait(kernel))


if __name__ == "__main__":
    main()
