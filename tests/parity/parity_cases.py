"""What the model parity suite compares, shared by the golden script and the tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from xtts_server.model.checkpoint import read_model_file

SENTENCES = (
    "This is a test of the real-time text-to-speech synthesis system.",
    "Hello there, how are you today?",
    "Dr. Smith paid $20.15 for 3 apples on the 1st of May.",
)

# (min_new_tokens, max_new_tokens) forced per model size: random weights stop at random places.
TOKENS = {"tiny": (30, 40), "full": (20, 30)}


def state_fingerprint(model_pth: Path) -> str:
    """sha256 over the checkpoint's tensors in key order (independent of the zip/pickle encoding)."""
    state, _ = read_model_file(model_pth)
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].contiguous().numpy().tobytes())
    return digest.hexdigest()
