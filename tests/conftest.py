"""Shared fixtures: random-weight checkpoints in the released format, made once per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

# Without a GPU, Triton kernels (model/fused_decode.py) run in Triton's interpreter. Read when a
# kernel is defined, so it is set before any test imports one.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

sys.path.insert(0, str(Path(__file__).parent / "parity"))
sys.path.insert(0, str(Path(__file__).parent))  # engine_helpers


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from xtts_server.random_model import make_test_model

    return make_test_model(tmp_path_factory.mktemp("tiny"), "tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_tts(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    from xtts_server import XTTS

    return XTTS.load(tiny_model_dir, device="cpu")


@pytest.fixture(scope="session")
def clip_paths(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from clips import write_clips

    return write_clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="session")
def tiny_voice(tiny_tts, clip_paths):  # type: ignore[no-untyped-def]
    return tiny_tts.clone_voice(clip_paths)


@pytest.fixture(scope="session")
def ray_serve(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A local Ray cluster serving the app on the tiny model (tests/ray_helpers.py); skips without
    the ray extra."""
    from ray_helpers import ray_serve as start

    with start(tiny_model_dir, tmp_path_factory.mktemp("ray")) as cluster:
        yield cluster
