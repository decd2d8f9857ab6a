"""Numbers in words for every language but Chinese and Japanese, as the reference reads them.

Order (it matters, and is the reference's): drop thousands separators; currencies (£, then $, then €);
decimals (not Turkish); ordinals; remaining integers. Each step calls num2words exactly as
coqui-tts 0.28 does, so the words are identical for the same num2words version.

Where the reference itself raises (num2words has no Hindi, no Czech ordinals, and gives up on very
large numbers), the failing number alone is read by `fallbacks` instead, and the rest of the text is
processed unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from num2words import num2words

from xtts_server.text.normalize import fallbacks
from xtts_server.text.normalize.hindi_numbers import expand_hindi_numbers

_ORDINAL_PATTERNS: dict[str, re.Pattern[str]] = {
    "en": re.compile(r"([0-9]+)(st|nd|rd|th)"),
    "es": re.compile(r"([0-9]+)(º|ª|er|o|a|os|as)"),
    "fr": re.compile(r"([0-9]+)(º|ª|er|re|e|ème)"),
    "de": re.compile(r"([0-9]+)(st|nd|rd|th|º|ª|\.(?=\s|$))"),
    "pt": re.compile(r"([0-9]+)(º|ª|o|a|os|as)"),
    "it": re.compile(r"([0-9]+)(º|°|ª|o|a|i|e)"),
    "pl": re.compile(r"([0-9]+)(º|ª|st|nd|rd|th)"),
    "ar": re.compile(r"([0-9]+)(ون|ين|ث|ر|ى)"),
    # A dot after a number marks an ordinal in Czech ("1. den").
    "cs": re.compile(r"([0-9]+)\.(?=\s|$)"),
    "ru": re.compile(r"([0-9]+)(-й|-я|-е|-ое|-ье|-го)"),
    "nl": re.compile(r"([0-9]+)(de|ste|e)"),
    "tr": re.compile(r"([0-9]+)(\.|inci|nci|uncu|üncü|\.)"),
    "hu": re.compile(r"([0-9]+)(\.|adik|edik|odik|edik|ödik|ödike|ik)"),
    "ko": re.compile(r"([0-9]+)(번째|번|차|째)"),
    "hi": re.compile(r"([0-9]+)(st|nd|rd|th)"),
}
_INTEGER = re.compile(r"[0-9]+")
# Currency amounts with the sign before or after; EUR lists the sign-after form first.
_CURRENCY_PATTERNS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("GBP", "£", re.compile(r"((£[0-9\.\,]*[0-9]+)|([0-9\.\,]*[0-9]+£))")),
    ("USD", "$", re.compile(r"((\$[0-9\.\,]*[0-9]+)|([0-9\.\,]*[0-9]+\$))")),
    ("EUR", "€", re.compile(r"(([0-9\.\,]*[0-9]+€)|((€[0-9\.\,]*[0-9]+)))")),
)
# Thousands groups: "1,000,000.5" in English and Russian, "1.000.000,5" elsewhere. In the second
# pattern the reference's "." is unescaped and so matches any character; only dots are removed.
_COMMA_GROUPED = re.compile(r"\b\d{1,3}(,\d{3})*(\.\d+)?\b")
_DOT_GROUPED = re.compile(r"\b\d{1,3}(.\d{3})*(\,\d+)?\b")
_DECIMAL = re.compile(r"([0-9]+[.,][0-9]+)")

# What num2words puts before the cents of an amount; cut off when the amount has no cents.
_CURRENCY_JOINERS: dict[str, str] = {
    "en": ", ",
    "es": " con ",
    "fr": " et ",
    "de": " und ",
    "pt": " e ",
    "it": " e ",
    "pl": ", ",
    "cs": ", ",
    "ru": ", ",
    "nl": ", ",
    "ar": ", ",
    "tr": ", ",
    "hu": ", ",
    "ko": ", ",
    "hi": ", ",
}


class _CurrencyUnreadable(Exception):
    """Ends the currency passes, as an exception inside them does in the reference."""


def _currency_words(match: re.Match[str], lang: str, currency: str) -> str:
    try:
        amount = float(re.sub(r"[^\d.]", "", match.group(0).replace(",", ".")))
        words: str = num2words(amount, to="currency", currency=currency, lang=lang)
    except Exception as exc:  # the reference swallows any error here
        raise _CurrencyUnreadable from exc
    if amount.is_integer():
        cut = words.rfind(_CURRENCY_JOINERS[lang])
        if cut != -1:
            words = words[:cut]
    return words


def _expand_currencies(text: str, lang: str) -> str:
    for currency, sign, pattern in _CURRENCY_PATTERNS:
        if sign not in text:
            continue  # same result; the pattern's backtracking is cubic on long digit runs
        try:
            text = pattern.sub(lambda m, c=currency: _currency_words(m, lang, c), text)  # type: ignore[misc]
        except _CurrencyUnreadable:
            # The reference wraps all three passes in one suppress(): the first failure skips the rest,
            # and their signs are then read by the symbol table.
            break
    return text


def _or_fallback(read: Callable[[], str], fallback: Callable[[], str]) -> str:
    # num2words raises NotImplementedError (no Hindi, no Czech ordinals), OverflowError (huge numbers)
    # and, for odd input, other errors; the reference lets all of them escape, so any reading is ours.
    try:
        return read()
    except Exception:
        return fallback()


def _decimal_words(match: re.Match[str], lang: str) -> str:
    digits = match.group(1).replace(",", ".")
    return _or_fallback(
        lambda: str(num2words(float(digits), lang=lang)),
        lambda: fallbacks.decimal_words(digits, lang),
    )


def _ordinal_words(match: re.Match[str], lang: str) -> str:
    return _or_fallback(
        lambda: str(num2words(int(match.group(1)), ordinal=True, lang=lang)),
        lambda: fallbacks.ordinal_words(match, lang),
    )


def _integer_words(match: re.Match[str], lang: str) -> str:
    digits = match.group(0)
    return _or_fallback(
        lambda: str(num2words(int(digits), lang=lang)),
        lambda: fallbacks.integer_words(digits, lang),
    )


def _drop_commas(match: re.Match[str]) -> str:
    return match.group(0).replace(",", "")


def _drop_dots(match: re.Match[str]) -> str:
    return match.group(0).replace(".", "")


def expand_numbers(text: str, lang: str) -> str:
    """Numbers, currencies, decimals and ordinals in words, for one of the reference's non-CJK languages."""
    if lang == "hi" and _INTEGER.search(text):
        # The reference raises on any ASCII digit in Hindi (num2words has no Hindi), so nothing here
        # has a reference reading to keep: read the numbers our own, Hindi way.
        return expand_hindi_numbers(text)
    if lang in ("en", "ru"):
        text = _COMMA_GROUPED.sub(_drop_commas, text)
    else:
        text = _DOT_GROUPED.sub(_drop_dots, text)
    text = _expand_currencies(text, lang)
    if lang != "tr":
        text = _DECIMAL.sub(lambda m: _decimal_words(m, lang), text)
    text = _ORDINAL_PATTERNS[lang].sub(lambda m: _ordinal_words(m, lang), text)
    text = _INTEGER.sub(lambda m: _integer_words(m, lang), text)
    return text
