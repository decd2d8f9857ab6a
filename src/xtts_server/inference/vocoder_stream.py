"""Streaming vocoder with bounded work per chunk, sample-exact against decoding the whole utterance.

The reference re-decodes every latent so far at each chunk (quadratic) and crossfades the joins. We
decode only what is new: the decoder is linear interpolations (speed, x4, x24000/22050) followed by a
convolutional generator, so each output sample depends on a bounded neighbourhood of latents.

- Interpolation with a given scale_factor maps output index j to source (j + 0.5) / scale - 0.5,
  independent of the total length. So any range of interpolated frames can be computed from the
  latents around it (`LinearStage` redoes F.interpolate's arithmetic on index ranges). A frame is
  final once both its source neighbours are final and not clamped at the moving right edge.
- The generator's receptive field is (left, right) frames, so samples of frames [a, b) are final
  once frames [a - left, b + right) are, and a window of that span reproduces them.

Each chunk thus runs the generator on (new frames + left + right) frames, whatever the utterance
length: the cost per chunk is bounded, and the joined stream equals whole-utterance decoding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xtts_server.model.hifigan import HifiDecoder


class LinearStage:
    """F.interpolate(x, scale_factor=scale, mode="linear", align_corners=False), by index ranges."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        # ATen computes 1/scale in double, then works in float32 (opmath for float and half).
        self.inv = np.float32(1.0 / scale)

    def out_len(self, n_in: int) -> int:
        return math.floor(float(n_in) * self.scale)  # as F.interpolate computes the output size

    def _i0(self, j: int) -> int:
        src = max(self.inv * np.float32(j + 0.5) - np.float32(0.5), np.float32(0))
        return int(src)

    def copies(self, n_in: int) -> bool:
        """ATen copies the input unchanged when the output has the input's length (short inputs with
        a scale just above 1), instead of interpolating."""
        return self.out_len(n_in) == n_in

    def final_count(self, n_in: int, final_in: int, at_end: bool) -> int:
        """How many leading outputs are final, given `n_in` inputs of which `final_in` are final."""
        n_out = self.out_len(n_in)
        if at_end and final_in == n_in:
            return n_out
        if self.scale > 1 and self.copies(n_in):
            return 0  # more input will end the copy shortcut and change every output
        j = n_out
        # Output j is final when it reads inputs i0 and i0 + 1, both final (no right-edge clamp).
        while j > 0 and self._i0(j - 1) + 1 > final_in - 1:
            j -= 1
        return j

    def source_range(self, start: int, end: int, n_in: int) -> tuple[int, int]:
        """Inputs [lo, hi) that outputs [start, end) read."""
        if self.copies(n_in):
            return start, end
        return self._i0(start), min(self._i0(end - 1) + 2, n_in)

    def indices(self, start: int, end: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For outputs [start, end): the two inputs each reads (i0, i1, absolute) and the weight of
        the second (float32), output = x[i0] * (1 - lam) + x[i1] * lam. Host arithmetic in float32,
        the same operations ATen does on the device; a copy is i0 = i1 = j, lam = 0 (exact)."""
        j = np.arange(start, end, dtype=np.int64)
        if self.copies(n_in):
            return j, j, np.zeros(len(j), dtype=np.float32)
        src = (j.astype(np.float32) + np.float32(0.5)) * self.inv - np.float32(0.5)
        src = np.maximum(src, np.float32(0))
        i0 = src.astype(np.int64)
        lam = src - i0.astype(np.float32)
        i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
        return i0, i1, lam

    def compute(self, x: torch.Tensor, x_start: int, start: int, end: int, n_in: int) -> torch.Tensor:
        """Outputs [start, end) from inputs x [C, k] that begin at input index x_start."""
        i0, i1, lam = self.indices(start, end, n_in)
        return mix(x.T, i0 - x_start, i1 - x_start, lam).T


_Array = np.ndarray | torch.Tensor


def mix(x: torch.Tensor, i0: _Array, i1: _Array, lam: _Array) -> torch.Tensor:
    """Rows x[i0] * (1 - lam) + x[i1] * lam of x [N, C], in float32 as ATen's linear interpolation,
    back in x's dtype -> [len(i0), C]. Indices and weights on the host or already on x's device."""
    a, b, w = (v if isinstance(v, torch.Tensor) else to_device(v, x.device) for v in (i0, i1, lam))
    w = w[:, None]
    return (x[a].float() * (1.0 - w) + x[b].float() * w).to(x.dtype)


def to_device(a: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host array on the device without waiting for the GPU (pinned memory, async copy): a plain
    `torch.tensor(..., device=cuda)` blocks until the queued work has run."""
    t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))
    if device.type != "cuda":
        return t
    return t.pin_memory().to(device, non_blocking=True)


@dataclass(frozen=True)
class WindowPlan:
    """One generator run, planned on the host: the latents it reads, how each interpolation stage
    maps them to generator frames, and which of its output samples are new."""

    latents: tuple[int, int]  # latent indices [lo, hi) it reads
    # Per stage, for each of its outputs: (i0, i1, lam) with i0 and i1 relative to the start of
    # the stage's own input range (level 0: the latents above).
    stages: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]
    frames: int  # generator input frames
    start: int  # first new sample in the window's output
    samples: int  # how many new samples
    # Its new samples lean on the utterance's true end (fewer than `right` frames after them): it
    # must run at its exact length, since frames padded on after it would change those samples.
    at_end: bool

    def take(self, wav: torch.Tensor) -> torch.Tensor:
        """The new samples from the window's output wav [>= frames * hop] -> [samples]."""
        return wav[self.start : self.start + self.samples]


def to_device_all(arrays: Sequence[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """Host arrays of one dtype on the device in one copy (see `to_device`: each copy costs the
    host tens of microseconds) -> a view of each, in its shape."""
    flat = to_device(np.concatenate([np.ravel(a) for a in arrays]), device)
    return [t.view(a.shape) for t, a in zip(flat.split([a.size for a in arrays]), arrays, strict=True)]


def window_frames(plans: Sequence[WindowPlan], latents: torch.Tensor) -> torch.Tensor:
    """Generator input frames of many windows at once. `latents` [sum of latent ranges, C] holds
    each plan's latents, concatenated in plan order -> [sum of frames, C], each plan's frames
    concatenated in the same order. Plans with fewer stages (speed 1 beside another speed) get
    copy stages in front, which are exact."""
    depth = max(len(p.stages) for p in plans)
    sizes = [p.latents[1] - p.latents[0] for p in plans]
    levels = []  # each stage's (i0, i1, lam) over all plans, on the host
    for level in range(depth):
        i0s, i1s, lams, out_sizes = [], [], [], []
        offset = 0
        for p, size in zip(plans, sizes, strict=True):
            skip = depth - len(p.stages)
            if level < skip:
                i0 = i1 = np.arange(size, dtype=np.int64)
                lam = np.zeros(size, dtype=np.float32)
            else:
                i0, i1, lam = p.stages[level - skip]
            i0s.append(i0 + offset)
            i1s.append(i1 + offset)
            lams.append(lam)
            out_sizes.append(len(i0))
            offset += size
        levels.append((np.concatenate(i0s), np.concatenate(i1s), np.concatenate(lams)))
        sizes = out_sizes
    # Two copies to the device for all stages (indices, weights), not three a stage.
    indices = to_device_all([i for i0, i1, _ in levels for i in (i0, i1)], latents.device)
    weights = to_device_all([lam for _, _, lam in levels], latents.device)
    x = latents
    for level in range(depth):
        x = mix(x, indices[2 * level], indices[2 * level + 1], weights[level])
    return x


@dataclass(frozen=True)
class Window:
    """One generator run of the single-stream path: its plan and its frames [C, n]."""

    plan: WindowPlan
    frames: torch.Tensor  # [C, n] generator input frames


class StreamingVocoder:
    """Feed latents as they are generated; get back the audio that can no longer change.

    `push`/`finish` plan a window and run it at once. The batching engine instead calls
    `extend` and `plan`, runs the windows of many streams together, and `Window.take`s the samples."""

    def __init__(self, decoder: HifiDecoder, speaker_embedding: torch.Tensor, speed: float = 1.0) -> None:
        self.decoder = decoder
        self.g = speaker_embedding  # [1, 512, 1]
        self.stages: list[LinearStage] = []
        if speed != 1.0:
            self.stages.append(LinearStage(1.0 / max(speed, 0.05)))  # the reference's length_scale
        self.stages += [LinearStage(s) for s in decoder.interpolation_scales]
        self.left, self.right = decoder.receptive_field  # generator context, in frames
        self.hop = decoder.args.samples_per_frame  # output samples per frame
        self.latents: list[torch.Tensor] = []  # each [C]
        self.done_frames = 0  # generator frames whose samples were returned
        self.last_window = 0  # frames in the last generator window (for tests and metrics)

    def extend(self, latents: torch.Tensor) -> None:
        """Add latents [n, C] (kept by reference: pass a tensor nobody overwrites)."""
        self.latents.extend(latents.unbind(0))

    def push(self, latents: torch.Tensor) -> torch.Tensor:
        """Add latents [n, C]; return the newly final samples [m] (possibly empty)."""
        self.extend(latents)
        return self._run(self.plan(at_end=False))

    def finish(self) -> torch.Tensor:
        """Return every remaining sample: the utterance is complete."""
        return self._run(self.plan(at_end=True))

    def _run(self, window: Window | None) -> torch.Tensor:
        if window is None:
            return torch.zeros(0, dtype=torch.float32)
        wav = self.decoder.generate(window.frames[None].to(self.g.dtype), self.g).reshape(-1)  # [n * hop]
        return window.plan.take(wav).float()

    def plan_window(self, n: int, at_end: bool) -> WindowPlan | None:
        """The next window, given that `n` latents exist (the stream's first n), planned on the host
        (None when no new sample is final yet). Marks its samples as returned: the caller must run
        it. The batching engine plans many streams' windows this way and runs them together."""
        sizes, finals = [n], [n]
        for stage in self.stages:
            finals.append(stage.final_count(sizes[-1], finals[-1], at_end))
            sizes.append(stage.out_len(sizes[-1]))
        total, final = sizes[-1], finals[-1]
        end = total if at_end else max(final - self.right, self.done_frames)
        if end <= self.done_frames:
            return None
        lo = max(self.done_frames - self.left, 0)
        hi = min(end + self.right, final)
        # From the frames down to the latents: each stage's outputs and the inputs they read.
        stages = []
        start, stop = lo, hi
        for level in range(len(self.stages), 0, -1):
            stage = self.stages[level - 1]
            a, b = stage.source_range(start, stop, sizes[level - 1])
            i0, i1, lam = stage.indices(start, stop, sizes[level - 1])
            stages.append((i0 - a, i1 - a, lam))
            start, stop = a, b
        self.last_window = hi - lo
        plan = WindowPlan((start, stop), tuple(reversed(stages)), hi - lo,
                          (self.done_frames - lo) * self.hop, (end - self.done_frames) * self.hop,
                          at_end=end + self.right > hi)  # fmt: skip
        self.done_frames = end
        return plan

    def plan(self, at_end: bool) -> Window | None:
        """The next window to decode from the latents pushed so far (see `plan_window`)."""
        p = self.plan_window(len(self.latents), at_end)
        if p is None:
            return None
        latents = torch.stack(self.latents[p.latents[0] : p.latents[1]])  # [n, C]
        frames = window_frames([p], latents).T  # [C, frames]
        return Window(p, frames)
