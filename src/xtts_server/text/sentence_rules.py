"""Where a sentence ends, and where an over-long one may be cut: the rules behind `split.py`.

A boundary is decided from local context only: the terminator, the word before it and the first
character of what follows. So the same decision is reached on the whole text and on any prefix that
reaches one character into the next sentence, which is what lets the incremental splitter release a
sentence as soon as it is certain and still produce exactly the sentences of the whole text.

Rules, for a terminator run (". ! ? …", CJK "。！？", Devanagari "।", Arabic "؟ ۔") plus closing
quotes or brackets after it:
- CJK, Devanagari and line breaks end a sentence outright (no space needed after 。).
- Latin-style terminators end one only when whitespace follows ("3.5", "example.com" do not).
- After "." or "…", the sentence goes on when the next word starts with a lower-case letter
  ("e.g. this", "1. den"), when the dot closes a known abbreviation ("Dr.", "Mrs.", "Ing.") or a
  single letter ("J. Smith", "U.S."), and, in languages that write ordinals with a dot (de, cs, tr,
  hu), when it follows a number of up to three digits ("am 1. Mai").
"""

from __future__ import annotations

import re
from enum import Enum

from xtts_server.text.normalize.word_tables import ABBREVIATIONS

_LATIN_TERMINATORS = ".!?…؟۔"
_HARD_TERMINATORS = "。！？｡।॥"  # end a sentence without a space after them
_CLOSERS = "\"')]}»”’」』）】〕〉》›"
_CLAUSE_BREAKS = ",;:，；：、"  # where an over-long sentence is cut first

# Abbreviations whose dot is not a sentence end, beyond the reference's expansion tables (which are
# included below): titles before names, and words usually followed by a number.
_COMMON_ABBREVIATIONS = {
    "en": "mr mrs ms dr prof sr jr st vs etc eg ie no nos fig vol approx inc ltd co gen capt sgt lt col "
    "rev hon maj esq ft mt ave blvd dept est jan feb mar apr jun jul aug sep sept oct nov dec",
    "es": "sr sra srta dr dra ud uds pág núm tel etc",
    "fr": "m mme mlle mm dr pr st ste etc cf tél",
    "de": "fr hr dr prof st nr bzw ca usw vgl z b d h u a s tel",
    "it": "sig sigra dott dr prof ing avv st ecc pag tel",
    "pt": "sr sra srta dr dra prof st etc pág tel",
    "pl": "p m dr prof inż mgr sw św ul nr tel itd itp np",
    "tr": "b bay bayan dr prof doç byk vb vs tel no",
    "ru": "г гг т д ул им стр рис тел др проф",
    "nl": "dhr mevr dr jhr prof mr ir ing nr blz enz bijv tel",
    "cs": "dr ing p pí mgr bc prof doc č tel atd apod tzv např",
    "hu": "dr b nőv id ifj özv prof stb pl ún tel",
}
_ORDINAL_DOT_LANGUAGES = frozenset({"de", "cs", "tr", "hu"})
_WORD_BEFORE = re.compile(r"(\w+)$")


def abbreviations(lang: str) -> frozenset[str]:
    """Lower-case abbreviations (without their dot) whose dot does not end a sentence in `lang`."""
    words = set(_COMMON_ABBREVIATIONS.get(lang, "").split())
    words.update(abbr for abbr, _ in ABBREVIATIONS.get(lang, ()) if "-" not in abbr)
    return frozenset(words)


class Decision(Enum):
    BOUNDARY = "boundary"
    CONTINUES = "continues"
    UNDECIDED = "undecided"  # the text so far stops too early to tell


def _skip(text: str, start: int, chars: str) -> int:
    while start < len(text) and text[start] in chars:
        start += 1
    return start


def decide(text: str, index: int, lang: str, abbrevs: frozenset[str], start: int = 0) -> tuple[Decision, int]:
    """Whether the terminator or line break at `index` ends a sentence, and where that sentence ends.

    `start` is where the sentence begins (the word before a dot is not read back past it). Returns
    (decision, end): `end` is just past the terminator run and any closing quotes/brackets.
    """
    char = text[index]
    if char == "\n":
        return Decision.BOUNDARY, index + 1
    hard = char in _HARD_TERMINATORS
    run_end = _skip(text, index, _HARD_TERMINATORS if hard else _LATIN_TERMINATORS)
    end = _skip(text, run_end, _CLOSERS)
    if end == len(text):
        return Decision.UNDECIDED, end  # more terminators, closers or the next word may follow
    if hard:
        return Decision.BOUNDARY, end
    if not text[end].isspace():
        return Decision.CONTINUES, end  # "3.5", "example.com", "?!x"
    following = end
    while following < len(text) and text[following].isspace():
        if text[following] == "\n":
            return Decision.BOUNDARY, end
        following += 1
    if following == len(text):
        return Decision.UNDECIDED, end
    run = text[index:run_end]
    if set(run) <= set(".…"):
        if text[following].islower():
            return Decision.CONTINUES, end
        if run == "." and run_end == end:
            word = _WORD_BEFORE.search(text, start, index)
            if word is not None:
                token = word.group(1)
                if token.lower() in abbrevs or (len(token) == 1 and token.isalpha()):
                    return Decision.CONTINUES, end
                if lang in _ORDINAL_DOT_LANGUAGES and token.isdigit() and len(token) <= 3:
                    return Decision.CONTINUES, end
    return Decision.BOUNDARY, end


def is_candidate(char: str) -> bool:
    return char == "\n" or char in _LATIN_TERMINATORS or char in _HARD_TERMINATORS


def is_cjk(char: str) -> bool:
    """Whether `char` is CJK (kana, ideographs, Hangul, full-width forms or CJK punctuation): text that
    may be cut between two characters, since it does not separate words by spaces."""
    code = ord(char)
    return (
        0x3040 <= code <= 0x30FF  # kana
        or 0x3400 <= code <= 0x9FFF  # CJK ideographs
        or 0xAC00 <= code <= 0xD7A3  # Hangul syllables
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x3000 <= code <= 0x303F  # CJK punctuation
    )


def long_cut(text: str, limit: int) -> int:
    """Where to cut the first piece off a sentence longer than `limit` (looks at text[:limit + 1] only).

    Prefers the last clause mark (",", ";", ":", "、" ...) in the second half of the window, then the
    last space, then the last place next to a CJK character; a single token longer than the limit (a
    URL) is cut at the limit, the only place no rule can avoid breaking.
    """
    window = text[: limit + 1]
    for position in range(limit - 1, limit // 2 - 1, -1):
        if window[position] in _CLAUSE_BREAKS and (
            window[position + 1].isspace() or is_cjk(window[position]) or is_cjk(window[position + 1])
        ):
            return position + 1
    for position in range(limit, 0, -1):
        if window[position].isspace():
            return position
    for position in range(limit, 0, -1):
        if is_cjk(window[position - 1]) or is_cjk(window[position]):
            return position
    return limit
