"""Czech ordinal numbers in words, masculine nominative ("1." -> "první").

num2words has no Czech ordinals, so the reference raises on "1. den"; this is our reading. Czech
ordinals agree with their noun in gender and case, which a number alone does not tell us; the
masculine nominative is the citation form and is understood in every context.
"""

from __future__ import annotations

from num2words import num2words

_UNITS = ("", "první", "druhý", "třetí", "čtvrtý", "pátý", "šestý", "sedmý", "osmý", "devátý")
_TEENS = (
    "desátý",
    "jedenáctý",
    "dvanáctý",
    "třináctý",
    "čtrnáctý",
    "patnáctý",
    "šestnáctý",
    "sedmnáctý",
    "osmnáctý",
    "devatenáctý",
)
_TENS = (
    "",
    "",
    "dvacátý",
    "třicátý",
    "čtyřicátý",
    "padesátý",
    "šedesátý",
    "sedmdesátý",
    "osmdesátý",
    "devadesátý",
)
_HUNDREDS = (
    "",
    "stý",
    "dvoustý",
    "třístý",
    "čtyřstý",
    "pětistý",
    "šestistý",
    "sedmistý",
    "osmistý",
    "devítistý",
)

#: Ordinals are read up to here; larger numbers followed by a dot are read as cardinals.
LARGEST_ORDINAL = 1000


def _below_hundred(value: int) -> str:
    if value < 10:
        return _UNITS[value]
    if value < 20:
        return _TEENS[value - 10]
    tens, units = divmod(value, 10)
    return f"{_TENS[tens]} {_UNITS[units]}" if units else _TENS[tens]


def czech_ordinal(value: int) -> str:
    """1 -> "první", 21 -> "dvacátý první", 125 -> "sto dvacátý pátý", 1000 -> "tisící".

    Raises ValueError outside 1..LARGEST_ORDINAL.
    """
    if not 1 <= value <= LARGEST_ORDINAL:
        raise ValueError(f"no Czech ordinal reading for {value}")
    if value == 1000:
        return "tisící"
    hundreds, rest = divmod(value, 100)
    if not rest:
        return _HUNDREDS[hundreds]
    if not hundreds:
        return _below_hundred(rest)
    # Colloquial compound ordinals keep the hundreds as a cardinal: "sto dvacátý pátý".
    return f"{num2words(hundreds * 100, lang='cs')} {_below_hundred(rest)}"
