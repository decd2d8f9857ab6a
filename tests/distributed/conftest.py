"""The Ray tests use the server tests' helpers (decoding, free ports)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
