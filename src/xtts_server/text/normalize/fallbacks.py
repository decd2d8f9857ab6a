"""Our readings of the numbers on which the reference raises instead of speaking.

Only reached where num2words fails inside the reference's own steps (so token parity elsewhere is
untouched): Hindi numbers (num2words has no Hindi), Czech ordinals ("1. den"), and numbers too
large for num2words in a language (read digit by digit).
"""

from __future__ import annotations

import re

from num2words import num2words

from xtts_server.text.normalize.czech_ordinals import LARGEST_ORDINAL, czech_ordinal
from xtts_server.text.normalize.hindi_numbers import POINT_WORD as HINDI_POINT
from xtts_server.text.normalize.hindi_numbers import hindi_digits, hindi_number

# The word num2words itself puts between whole and fraction, per language.
_POINT_WORDS: dict[str, str] = {
    "en": "point",
    "es": "punto",
    "fr": "virgule",
    "de": "Komma",
    "it": "virgola",
    "pt": "vírgula",
    "pl": "przecinek",
    "cs": "celá",
    "ru": "запятая",
    "nl": "komma",
    "ar": "فاصلة",
    "tr": "virgül",
    "hu": "egész",
    "ko": "점",
    "hi": HINDI_POINT,
}


def _digit_by_digit(digits: str, lang: str) -> str:
    if lang == "hi":
        return hindi_digits(digits)
    return " ".join(str(num2words(int(d), lang=lang)) for d in digits)


def integer_words(digits: str, lang: str) -> str:
    """An integer the reference could not read: Hindi words, else the whole number, else its digits."""
    if lang == "hi":
        return hindi_number(digits)
    try:
        return str(num2words(int(digits), lang=lang))
    except Exception:  # too large for this language's num2words
        return _digit_by_digit(digits, lang)


def decimal_words(number: str, lang: str) -> str:
    """ "12.5" as whole number, the language's decimal word, then the fraction digit by digit."""
    whole, _, fraction = number.partition(".")
    return f"{integer_words(whole, lang)} {_POINT_WORDS[lang]} {_digit_by_digit(fraction, lang)}"


def ordinal_words(match: re.Match[str], lang: str) -> str:
    """An ordinal the reference could not read (group 1 holds its digits)."""
    digits = match.group(1)
    if lang == "cs":
        at_text_end = match.end() >= len(match.string.rstrip())
        value = int(digits) if len(digits) <= 4 else 0  # longer ones are never ordinals here
        if not at_text_end and 1 <= value <= LARGEST_ORDINAL:
            return czech_ordinal(value)
        # A number ending the text, or a year, is a cardinal followed by a full stop.
        return f"{integer_words(digits, lang)}."
    if lang == "ko":
        # num2words fails on some Korean ordinals (100); the counter word after the number says "-th".
        return f"{integer_words(digits, lang)} {match.group(2)}"
    return integer_words(digits, lang)
