"""Deterministic weights per key name, shared by scripts/parity/make_audio_golden.py (which recorded the
golden outputs with them) and the tests that rebuild the same modules."""

from __future__ import annotations

import math
import zlib

import numpy as np


def seeded_weights(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    """Deterministic weights per key name (the tests hold an identical copy of this function)."""
    out: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            continue
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        if leaf == "running_var":
            values = rng.uniform(0.5, 1.5, shape)
        elif leaf == "running_mean":
            values = rng.normal(0.0, 0.1, shape)
        elif leaf == "bias":
            values = rng.normal(0.0, 0.05, shape)
        elif leaf == "original0":  # weight-norm magnitude g
            values = rng.uniform(0.5, 1.0, shape)
        elif len(shape) == 1:  # BatchNorm scale
            values = 1.0 + rng.normal(0.0, 0.1, shape)
        else:
            values = rng.normal(0.0, 1.0 / math.sqrt(math.prod(shape[1:])), shape)
        out[name] = values.astype(np.float32)
    return out
