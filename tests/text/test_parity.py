"""Our text front end against the reference's recorded token ids (scripts/parity/make_text_golden.py)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

from xtts_server.errors import InvalidText
from xtts_server.text import Tokenizer
from xtts_server.text.languages import base_language
from xtts_server.text.normalize import normalize_text
from xtts_server.text.vocab import vocab_sha256

pytestmark = pytest.mark.parity

GOLDEN = Path(__file__).resolve().parents[1] / "parity" / "golden"
TOKENS = json.loads((GOLDEN / "text_tokens.json").read_text(encoding="utf-8"))
FUZZ = json.loads((GOLDEN / "text_normalize_fuzz.json").read_text(encoding="utf-8"))
_EXTRA_MODULE = {"zh": "pypinyin", "ja": "cutlet"}


def _needs_extra(lang: str) -> None:
    module = _EXTRA_MODULE.get(base_language(lang))
    if module and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} (extra for {lang}) is not installed")


def test_golden_was_recorded_with_this_vocab() -> None:
    assert TOKENS["vocab_sha256"] == vocab_sha256()
    assert FUZZ["vocab_sha256"] == vocab_sha256()


def test_corpus_is_large_enough() -> None:
    cases = TOKENS["cases"]
    assert len(cases) >= 400
    per_language: dict[str, int] = {}
    for case in cases:
        if case["text"].strip():
            key = base_language(case["lang"])
            per_language[key] = per_language.get(key, 0) + 1
    assert len(per_language) == 17
    assert min(per_language.values()) >= 20


@pytest.mark.parametrize("case", TOKENS["cases"], ids=[c["id"] for c in TOKENS["cases"]])
def test_token_ids_equal_the_reference(tokenizer: Tokenizer, case: dict[str, Any]) -> None:
    _needs_extra(case["lang"])
    if not case["text"].strip():
        # The reference encodes empty text as the bare language token; we refuse it.
        with pytest.raises(InvalidText):
            tokenizer.encode(case["text"], case["lang"])
        return
    ids = tokenizer.encode(case["text"], case["lang"])
    if case["error"] is None:
        assert ids == case["ids"], (
            f"ref: {case['cleaned']!r}\nours: {tokenizer.normalize(case['text'], case['lang'])!r}"
        )
        return
    # The reference raised (numbers in Hindi, Czech ordinals, ...): we read the text instead.
    cleaned = tokenizer.normalize(case["text"], case["lang"])
    assert len(ids) > 2
    assert cleaned.strip()
    assert not re.search(r"[0-9]", cleaned), cleaned


@pytest.mark.parametrize("lang", sorted({c["lang"] for c in FUZZ["cases"]}), ids=lambda lang: f"fuzz-{lang}")
def test_number_rewriting_equals_the_reference_on_generated_snippets(lang: str) -> None:
    _needs_extra(lang)
    mismatches = []
    for case in (c for c in FUZZ["cases"] if c["lang"] == lang):
        ours = normalize_text(
            case["text"].strip().lower(), lang
        )  # must not raise, even where the reference did
        if case["error"] is None and ours != case["cleaned"]:
            mismatches.append((case["text"], case["cleaned"], ours))
    assert not mismatches, mismatches[:5]
