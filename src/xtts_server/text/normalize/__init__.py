"""Text normalisation per language: the reference's `preprocess_text`, step for step.

`normalize_text(text, lang)` takes text already stripped and lower-cased (as `Xtts.inference` passes
it) and the reference's base language code ("zh", not "zh-cn"), and returns the string the BPE
tokenizer sees, less the language tag.
"""

from __future__ import annotations

import re

from xtts_server.text.normalize.numbers import expand_numbers
from xtts_server.text.normalize.word_tables import expand_abbreviations, expand_symbols

__all__ = ["multilingual_clean", "normalize_text"]

_WHITESPACE = re.compile(r"\s+")


def multilingual_clean(text: str, lang: str) -> str:
    """Quotes out, numbers, abbreviations and symbols in words, whitespace collapsed (all but Japanese)."""
    text = text.replace('"', "")
    if lang == "tr":
        # The reference's Turkish capital fixes. In the inference path the text is lower-cased first,
        # which turns "İ" into "i" + U+0307 before this runs; kept for parity all the same.
        text = text.replace("İ", "i").replace("Ö", "ö").replace("Ü", "ü")
    text = text.lower()
    if lang == "zh":
        from xtts_server.text.normalize.chinese_numbers import normalize_chinese_numbers

        text = normalize_chinese_numbers(text)
    else:
        text = expand_numbers(text, lang)
    text = expand_abbreviations(text, lang)
    text = expand_symbols(text, lang)
    return _WHITESPACE.sub(" ", text).strip()


def normalize_text(text: str, lang: str) -> str:
    """The reference's text for the BPE: cleaners, then pinyin (zh), romanisation (ko) or romaji (ja)."""
    if lang == "ja":
        from xtts_server.text.normalize.japanese import to_romaji

        return to_romaji(text).lower()
    text = multilingual_clean(text, lang)
    if lang == "zh":
        from xtts_server.text.normalize.chinese import to_pinyin

        text = to_pinyin(text)
    elif lang == "ko":
        from xtts_server.text.normalize.korean import romanize_hangul

        text = romanize_hangul(text)
    return text
