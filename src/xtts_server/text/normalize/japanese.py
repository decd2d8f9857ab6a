"""Japanese to romaji with cutlet (MeCab via fugashi, UniDic-lite dictionary): the `ja` extra."""

from __future__ import annotations

import threading
from typing import Any

from xtts_server.text.extras import require

_lock = threading.Lock()
_katsu: Any = None


def _cutlet() -> Any:
    global _katsu
    with _lock:
        if _katsu is None:
            cutlet = require("cutlet", "Japanese text")
            require("fugashi", "Japanese text")
            require("unidic_lite", "Japanese text")
            # Default options, as the reference builds it: Hepburn, foreign spellings for katakana loans.
            _katsu = cutlet.Cutlet()
        return _katsu


def to_romaji(text: str) -> str:
    """Romaji as cutlet writes it ("東京へ行きます。" -> "Tokyo e ikimasu."); the caller lower-cases."""
    katsu = _cutlet()
    with _lock:  # MeCab taggers are not safe to share between threads
        return str(katsu.romaji(text))
