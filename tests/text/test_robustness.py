"""The front end never raises on text in a supported language (only InvalidText for empty text)."""

from __future__ import annotations

import random

import pytest

from xtts_server.errors import InvalidText
from xtts_server.text import LANGUAGES, Tokenizer

_POOLS = [
    "0123456789",
    ".,;:!?-/%$£€#@&°'\"()[]",
    " \t\n",
    "abcXYZ",
    "ÄÖÜßéèçİıŞ",
    "абвЖЁ",
    "مرحبا٣",
    "नमस्ते१२",
    "你好一二年月日元个％",
    "こんにちはカタカナ東京",
    "안녕하세요",
    "😀🎉\u200b\u0301\ufeff",
    "²³½Ⅻ①",
]


def test_random_text_in_every_language_encodes(tokenizer: Tokenizer) -> None:
    rng = random.Random(1)
    encoded = 0
    for _ in range(3000):
        text = "".join(rng.choice(rng.choice(_POOLS)) for _ in range(rng.randint(0, 30)))
        language = rng.choice(LANGUAGES)
        try:
            ids = tokenizer.encode(text, language)
        except InvalidText:
            assert not text.strip()
            continue
        assert ids and all(0 <= i < tokenizer.vocab_size for i in ids)
        encoded += 1
    assert encoded > 2500


# Past 4300 digits Python's int() refuses a digit string; the reference raises there, we do not.
_LONG = ["1" * 4400 + ". den", "9" * 4400 + ".5", "$" + "9" * 400]


@pytest.mark.parametrize(
    ("language", "text"),
    [(lang, text) for lang in ("en", "de", "cs", "hi", "ko") for text in _LONG]
    + [("zh-cn", "1" * 1500 + "元"), ("zh-cn", "9" * 1500 + ".5")],
)
def test_absurdly_long_numbers_are_read_not_raised(tokenizer: Tokenizer, language: str, text: str) -> None:
    if language == "zh-cn":
        pytest.importorskip("pypinyin")
    assert len(tokenizer.encode(text, language)) > 10
