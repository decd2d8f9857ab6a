"""Hangul to Latin letters, as the reference does it (academic-style Revised Romanization).

Each precomposed syllable (U+AC00..U+D7A3) is written initial + vowel + final from the Revised
Romanization tables, with no sound-change rules. A hyphen goes before a syllable whose initial is
silent, or whose initial glued to the previous final could be split two ways ("물엿" -> "mul-yeos").
Everything that is not a syllable is kept as is. This gives the same output as
`ko_speech_tools.hangul_romanize` (coqui-tts 0.28), which needs no extra package here.
"""

from __future__ import annotations

from functools import lru_cache

_FIRST_SYLLABLE = 0xAC00
_LAST_SYLLABLE = 0xD7A3
_VOWELS_TIMES_FINALS = 21 * 28

_INITIALS = (
    "g",
    "kk",
    "n",
    "d",
    "tt",
    "l",
    "m",
    "b",
    "pp",
    "s",
    "ss",
    "",
    "j",
    "jj",
    "ch",
    "k",
    "t",
    "p",
    "h",
)
_VOWELS = (
    "a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae",
    "oe", "yo", "u", "wo", "we", "wi", "yu", "eu", "ui", "i",
)  # fmt: skip
_FINALS = (
    "", "g", "kk", "gs", "n", "nj", "nh", "d", "l", "lg", "lm", "lb", "ls", "lt",
    "lp", "lh", "m", "b", "bs", "s", "ss", "ng", "j", "ch", "k", "t", "p", "h",
)  # fmt: skip


@lru_cache(maxsize=1)
def _ambiguous_joins() -> frozenset[str]:
    """Final+initial letter strings that split into (final, initial) in more than one way."""
    ambiguous = set()
    for final in _FINALS:
        for initial in _INITIALS:
            joined = final + initial
            splits = sum(
                1 for cut in range(len(joined)) if joined[:cut] in _FINALS and joined[cut:] in _INITIALS
            )
            if splits > 1:
                ambiguous.add(joined)
    return frozenset(ambiguous)


def romanize_hangul(text: str) -> str:
    """ "안녕하세요" -> "annyeonghaseyo"; non-Hangul characters pass through."""
    ambiguous = _ambiguous_joins()
    out: list[str] = []
    previous_final: str | None = None  # None: the previous character was not a syllable
    for char in text:
        code = ord(char)
        if not _FIRST_SYLLABLE <= code <= _LAST_SYLLABLE:
            out.append(char)
            previous_final = None
            continue
        index = code - _FIRST_SYLLABLE
        initial = _INITIALS[index // _VOWELS_TIMES_FINALS]
        vowel = _VOWELS[(index // 28) % 21]
        final = _FINALS[index % 28]
        if previous_final is not None and (initial == "" or previous_final + initial in ambiguous):
            out.append("-")
        out.append(initial + vowel + final)
        previous_final = final
    return "".join(out)
