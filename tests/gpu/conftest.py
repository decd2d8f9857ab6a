"""GPU tests (marker `gpu`): run on a machine with CUDA, skipped elsewhere.

python -m pytest tests/gpu -m gpu     # README: the GPU suite
"""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
