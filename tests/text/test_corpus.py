"""The parity corpus (tests/text/corpus.jsonl) holds every kind of text the issue names, in every language,
and the golden file was recorded from this very corpus."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest

from xtts_server.text.languages import LANGUAGES, base_language
from xtts_server.text.normalize.word_tables import ABBREVIATION_PATTERNS

CORPUS = Path(__file__).with_name("corpus.jsonl")
GOLDEN = Path(__file__).resolve().parents[1] / "parity" / "golden" / "text_tokens.json"
ROWS = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]

# How each language writes an ordinal with digits.
_ORDINALS = {
    "en": r"\d(st|nd|rd|th)\b",
    "es": r"\d\.?[ºª]",
    "fr": r"\d(er|re|e)\b",
    "de": r"\d\. \w",
    "it": r"\d[ºª°]",
    "pt": r"\d[ºª]",
    "pl": r"\d\. \w",
    "tr": r"\d\. \w|\d'(inci|ıncı|nci|ncı|uncu|üncü|ncu|ncü)",
    "ru": r"\d-(й|я|е|го|м)",
    "nl": r"\d(ste|de|e)\b",
    "cs": r"\d\. \w",
    "ar": r"الـ ?\d",
    "zh": r"第\d",
    "hu": r"\d\. \w",
    "ko": r"\d ?번째",
    "ja": r"第\d|\d番目",
    "hi": r"\d(ला|रा|था|वां|वीं)",
}
_SCRIPT_GROUPS = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK", "FULLWIDTH": "LATIN"}


def _scripts(text: str) -> set[str]:
    names = (unicodedata.name(char, "").split(" ")[0] for char in text if char.isalpha())
    return {_SCRIPT_GROUPS.get(name, name) for name in names if name}


def _abbreviation(text: str, lang: str) -> bool:
    patterns = ABBREVIATION_PATTERNS.get(lang, ())
    if patterns:  # the reference expands these: the corpus must make it do so
        return any(pattern.search(text) for pattern, _ in patterns)
    # The reference has no table for this language: a short dotted word inside the text ("Dr. 김").
    return re.search(r"(?<![\w.])[^\W\d_]{1,3}\.\s?\S", text) is not None


_CATEGORIES: dict[str, Callable[[str, str], bool]] = {
    "number": lambda text, lang: re.search(r"\d", text) is not None,
    "decimal": lambda text, lang: re.search(r"\d[.,]\d", text) is not None,
    "ordinal": lambda text, lang: re.search(_ORDINALS[lang], text) is not None,
    "currency": lambda text, lang: re.search(r"[$€£¥]", text) is not None,
    "percentage": lambda text, lang: re.search(r"[%％]", text) is not None,
    "abbreviation": _abbreviation,
    "symbol": lambda text, lang: re.search(r"[@&#°]", text) is not None,
    "mixed scripts": lambda text, lang: len(_scripts(text)) > 1,
    "emoji": lambda text, lang: any(unicodedata.category(c) == "So" and ord(c) >= 0x1F000 for c in text),
    "whitespace only": lambda text, lang: text != "" and not text.strip(),
    "empty": lambda text, lang: text == "",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_has_every_category_and_twenty_sentences(language: str) -> None:
    lang = base_language(language)
    texts = [row["text"] for row in ROWS if base_language(row["lang"]) == lang]
    assert sum(1 for text in texts if text.strip()) >= 20
    missing = [name for name, has in _CATEGORIES.items() if not any(has(text, lang) for text in texts)]
    assert not missing, f"{language}: no {', '.join(missing)}"


def test_ids_are_unique() -> None:
    ids = [row["id"] for row in ROWS]
    assert len(ids) == len(set(ids))


def test_golden_was_recorded_from_this_corpus() -> None:
    # Edit the corpus, then run scripts/parity/make_text_golden.py in the oracle venv.
    cases = json.loads(GOLDEN.read_text(encoding="utf-8"))["cases"]
    recorded = [(case["id"], case["lang"], case["text"]) for case in cases]
    assert recorded == [(row["id"], row["lang"], row["text"]) for row in ROWS]
