"""A batch of vocoder windows as fixed-shape index arrays, so that building their generator frames
(gathering latents from the rows' history, then the interpolation stages) runs inside the
vocoder's CUDA graph instead of as ~15 small host-launched operations (about 1 ms of host time per
batch on an H200's host, during which no decode step was launched).

Layout of a (b windows, f frames) bucket: window j owns a fixed slice of `caps[level]` entries at
every level (level 0: latents, level D: generator frames, caps[D] = f), so one pinned int64 array
and one float32 array describe the whole batch, uploaded in one copy each:

    ints:   rows [b c0] | pos [b c0] | per stage l: i0 [b c(l+1)], i1 [b c(l+1)] | valid [b f]
            | speaker rows [b] | lengths [b]
    floats: per stage l: lam [b c(l+1)]

Every window gets D = 1 + len(interpolation_scales) stages: a plan without a speed stage gets a
copy stage in front (i0 = i1 = j, lam = 0: exact). Entries past a window's own sizes point at
index 0 of the level below (finite garbage) and are masked out of the frames (`valid`); padding
windows read the scratch row. Arithmetic per entry is `vocoder_stream.mix`'s, so the frames equal
the unbatched path's bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from xtts_server.inference.vocoder_stream import WindowPlan, mix

# Fastest speech whose windows fit the layout (scale 1 / speed of the first stage); faster speech
# (up to the API's 10) runs window by window outside the graphs.
MAX_SPEED = 2.0


def level_caps(frames: int, scales: Sequence[float]) -> tuple[int, ...]:
    """Entries per window at each level, latents first, for windows of up to `frames` frames,
    with a speed stage (up to MAX_SPEED) in front of the decoder's own interpolation `scales`.
    A stage's outputs [lo, hi) read inputs [i0(lo), i0(hi - 1) + 2): at most ceil(n / scale) + 2."""
    caps = [frames]
    for scale in reversed(scales):
        caps.append(math.ceil(caps[-1] / scale) + 4)
    caps.append(math.ceil(caps[-1] * MAX_SPEED) + 4)  # the speed stage's input
    return tuple(reversed(caps))


@dataclass(frozen=True)
class WindowBatch:
    """The index layout of one (b, f) vocoder bucket (see the module's docstring)."""

    b: int
    f: int
    caps: tuple[int, ...]  # per level, latents first; caps[-1] == f
    ints: dict[str, int] = field(init=False)  # name -> offset in the int array
    floats: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        b, caps = self.b, self.caps
        ints: dict[str, int] = {}
        at = 0
        for name, size in (("rows", b * caps[0]), ("pos", b * caps[0])):
            ints[name], at = at, at + size
        for level in range(self.depth):
            for name in (f"i0_{level}", f"i1_{level}"):
                ints[name], at = at, at + b * caps[level + 1]
        for name, size in (("valid", b * self.f), ("speakers", b), ("lengths", b)):
            ints[name], at = at, at + size
        ints["end"] = at
        floats: dict[str, int] = {}
        at = 0
        for level in range(self.depth):
            floats[f"lam_{level}"], at = at, at + b * caps[level + 1]
        floats["end"] = at
        object.__setattr__(self, "ints", ints)
        object.__setattr__(self, "floats", floats)

    @property
    def depth(self) -> int:
        return len(self.caps) - 1

    @property
    def int_size(self) -> int:
        return self.ints["end"]

    @property
    def float_size(self) -> int:
        return self.floats["end"]

    def fits(self, plan: WindowPlan) -> bool:
        """Whether the plan's sizes fit this layout (else it runs outside the graphs)."""
        if plan.frames > self.f or len(plan.stages) > self.depth:
            return False
        sizes = [plan.latents[1] - plan.latents[0]] * (self.depth - len(plan.stages) + 1)
        sizes += [len(i0) for i0, _, _ in plan.stages]
        return all(n <= cap for n, cap in zip(sizes, self.caps, strict=True))

    def pack(
        self,
        plans: Sequence[WindowPlan],
        rows: Sequence[int],
        scratch: int,
        ints: np.ndarray,
        floats: np.ndarray,
    ) -> None:
        """Fill ints [>= int_size] and floats [>= float_size] for windows plans[j] of rows[j]
        (each `fits`); the rest of the b windows are padding on the scratch row."""
        assert len(plans) == len(rows) <= self.b
        b, f, caps, o = self.b, self.f, self.caps, self.ints
        ints[: self.int_size] = 0
        floats[: self.float_size] = 0.0
        ints[o["rows"] : o["rows"] + b * caps[0]] = scratch
        ints[o["speakers"] : o["speakers"] + b] = scratch
        ints[o["lengths"] : o["lengths"] + b] = f
        for j, (plan, row) in enumerate(zip(plans, rows, strict=True)):
            lo, hi = plan.latents
            at = j * caps[0]
            ints[o["rows"] + at : o["rows"] + at + hi - lo] = row
            ints[o["pos"] + at : o["pos"] + at + hi - lo] = np.arange(lo, hi)
            copy = np.arange(hi - lo, dtype=np.int64)
            stages = [(copy, copy, np.zeros(hi - lo, dtype=np.float32))] * (self.depth - len(plan.stages))
            for level, (i0, i1, lam) in enumerate([*stages, *plan.stages]):
                base, at = j * caps[level], j * caps[level + 1]
                n = len(i0)
                ints[o[f"i0_{level}"] + at : o[f"i0_{level}"] + at + n] = i0 + base
                ints[o[f"i1_{level}"] + at : o[f"i1_{level}"] + at + n] = i1 + base
                lam_at = self.floats[f"lam_{level}"] + at
                floats[lam_at : lam_at + n] = lam
            ints[o["valid"] + j * f : o["valid"] + j * f + plan.frames] = 1
            ints[o["speakers"] + j] = row
            ints[o["lengths"] + j] = plan.frames

    def frames(self, hist: torch.Tensor, ints: torch.Tensor, floats: torch.Tensor) -> torch.Tensor:
        """On the device: the batch's generator frames [b, f, C] from the latent history hist
        [rows, positions, C] and the uploaded arrays (zero past each window's own frames)."""
        b, caps, o = self.b, self.caps, self.ints

        def part(name: str, size: int) -> torch.Tensor:
            return ints[o[name] : o[name] + size]

        x = hist[part("rows", b * caps[0]), part("pos", b * caps[0])]  # [b c0, C]
        for level in range(self.depth):
            n = b * caps[level + 1]
            lam_at = self.floats[f"lam_{level}"]
            x = mix(x, part(f"i0_{level}", n), part(f"i1_{level}", n), floats[lam_at : lam_at + n])
        valid = part("valid", b * self.f) != 0
        return x.masked_fill(~valid[:, None], 0.0).view(b, self.f, -1)

    def speakers(self, ints: torch.Tensor) -> torch.Tensor:
        """The windows' rows (the scratch row for padding) [b], to gather speaker embeddings."""
        return ints[self.ints["speakers"] : self.ints["speakers"] + self.b]

    def lengths(self, ints: torch.Tensor) -> torch.Tensor:
        """Each window's frames (f for padding) [b]."""
        return ints[self.ints["lengths"] : self.ints["lengths"] + self.b]
