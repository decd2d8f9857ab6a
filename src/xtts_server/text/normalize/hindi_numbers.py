"""Hindi cardinal numbers in words (Indian grouping: hazaar, lakh, crore, arab, kharab).

num2words has no Hindi, so the reference raises on any digit in Hindi text; this is our reading.
"""

from __future__ import annotations

import re

# 0..99 each have their own word in Hindi.
_UNDER_HUNDRED: tuple[str, ...] = (
    "शून्य", "एक", "दो", "तीन", "चार", "पाँच", "छह", "सात", "आठ", "नौ",
    "दस", "ग्यारह", "बारह", "तेरह", "चौदह", "पंद्रह", "सोलह", "सत्रह", "अठारह", "उन्नीस",
    "बीस", "इक्कीस", "बाईस", "तेईस", "चौबीस", "पच्चीस", "छब्बीस", "सत्ताईस", "अट्ठाईस", "उनतीस",
    "तीस", "इकतीस", "बत्तीस", "तैंतीस", "चौंतीस", "पैंतीस", "छत्तीस", "सैंतीस", "अड़तीस", "उनतालीस",
    "चालीस", "इकतालीस", "बयालीस", "तैंतालीस", "चवालीस", "पैंतालीस", "छियालीस", "सैंतालीस", "अड़तालीस", "उनचास",
    "पचास", "इक्यावन", "बावन", "तिरपन", "चौवन", "पचपन", "छप्पन", "सत्तावन", "अट्ठावन", "उनसठ",
    "साठ", "इकसठ", "बासठ", "तिरसठ", "चौंसठ", "पैंसठ", "छियासठ", "सड़सठ", "अड़सठ", "उनहत्तर",
    "सत्तर", "इकहत्तर", "बहत्तर", "तिहत्तर", "चौहत्तर", "पचहत्तर", "छिहत्तर", "सतहत्तर", "अठहत्तर", "उन्यासी",
    "अस्सी", "इक्यासी", "बयासी", "तिरासी", "चौरासी", "पचासी", "छियासी", "सत्तासी", "अट्ठासी", "नवासी",
    "नब्बे", "इक्यानबे", "बानबे", "तिरानबे", "चौरानबे", "पचानबे", "छियानबे", "सत्तानबे", "अट्ठानबे", "निन्यानबे",
)  # fmt: skip

# Indian place names from the largest down: (value, word).
_SCALES: tuple[tuple[int, str], ...] = (
    (10**11, "खरब"),
    (10**9, "अरब"),
    (10**7, "करोड़"),
    (10**5, "लाख"),
    (10**3, "हज़ार"),
    (10**2, "सौ"),
)

#: Numbers at or above this are read digit by digit (a kharab of kharabs is not a number people say).
DIGIT_BY_DIGIT_FROM = 10**13

POINT_WORD = "दशमलव"


def hindi_digits(digits: str) -> str:
    """Each digit on its own: "2024" -> "दो शून्य दो चार"."""
    return " ".join(_UNDER_HUNDRED[int(d)] for d in digits if d.isdigit())


def hindi_number(digits: str) -> str:
    """An ASCII digit string in Hindi words; long strings digit by digit without converting to int."""
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(DIGIT_BY_DIGIT_FROM)):
        return hindi_digits(digits)
    return hindi_cardinal(int(significant))


def hindi_cardinal(value: int) -> str:
    """A non-negative integer in Hindi words: 1234567 -> "बारह लाख चौंतीस हज़ार पाँच सौ सड़सठ"."""
    if value < 0:
        raise ValueError("hindi_cardinal reads non-negative integers")
    if value >= DIGIT_BY_DIGIT_FROM:
        return hindi_digits(str(value))
    if value < 100:
        return _UNDER_HUNDRED[value]
    words: list[str] = []
    rest = value
    for scale, name in _SCALES:
        count, rest = divmod(rest, scale)
        if count:
            words += [hindi_cardinal(count), name]
    if rest:
        words.append(_UNDER_HUNDRED[rest])
    return " ".join(words)


# Thousands separators: 1,000,000 (Western) and 1,00,00,000 (Indian lakh/crore grouping).
_GROUPED = re.compile(r"\b(?:\d{1,3}(?:,\d{3})+|\d{1,2}(?:,\d{2})+,\d{3})\b")
_CURRENCY_WORDS = {"$": "डॉलर", "£": "पाउंड", "€": "यूरो", "₹": "रुपये"}
_CURRENCY = re.compile(r"([$£€₹])\s?([0-9]+(?:\.[0-9]+)?)|([0-9]+(?:\.[0-9]+)?)\s?([$£€₹])")
_DECIMAL = re.compile(r"([0-9]+)\.([0-9]+)")
_ORDINAL = re.compile(r"([0-9]+)(?:st|nd|rd|th)\b")
_INTEGER = re.compile(r"[0-9]+")


def hindi_decimal(whole: str, fraction: str) -> str:
    """ "12", "5" -> "बारह दशमलव पाँच" (the fraction digit by digit)."""
    return f"{hindi_number(whole)} {POINT_WORD} {hindi_digits(fraction)}"


def _amount(number: str) -> str:
    whole, _, fraction = number.partition(".")
    return hindi_decimal(whole, fraction) if fraction else hindi_number(whole)


def _currency(match: re.Match[str]) -> str:
    sign = match.group(1) or match.group(4)
    number = match.group(2) or match.group(3)
    return f"{_amount(number)} {_CURRENCY_WORDS[sign]}"


def expand_hindi_numbers(text: str) -> str:
    """ASCII numbers in Hindi text in Hindi words: amounts ("$20" -> "बीस डॉलर"), decimals, "1st", integers.

    Devanagari digits (०-९) are left as they are, as the reference leaves them.
    """
    text = _GROUPED.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _CURRENCY.sub(_currency, text)
    text = _DECIMAL.sub(lambda m: hindi_decimal(m.group(1), m.group(2)), text)
    text = _ORDINAL.sub(lambda m: hindi_number(m.group(1)), text)
    return _INTEGER.sub(lambda m: hindi_number(m.group(0)), text)
