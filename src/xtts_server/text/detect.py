"""language="auto": which of the 17 XTTS languages a text is written in.

Two stages. The script decides wherever it can: Hangul -> ko, kana -> ja, other Han -> zh-cn,
Arabic -> ar, Devanagari -> hi, Cyrillic -> ru (the only language of each script the model speaks).
Latin-script text goes to py3langid (a maintained fork of langid.py: a naive Bayes model over byte
n-grams that ships inside the wheel, ~4.5 MB, nothing downloaded), restricted to the 11 Latin-script
languages. Chosen over lingua-language-detector: on our corpus it was about as accurate (352 vs 356
of 372 short sentences, lingua in high-accuracy mode) at 1/20 of the install size (4.5 MB vs 96 MB),
a quarter of the memory (130 MB vs 475 MB RSS) and 1.5 s instead of 7 s to load; lingua's
low-accuracy mode is small but was clearly worse (331 of 372).

On two or three words the n-gram model guesses ("Hello John!" came out Italian, "Hoi Jan!" too), so
its scores are combined with evidence it cannot see that well: frequent words and letters only one
of the 11 languages writes (`detect_words`). Each such word adds `_WORD_WEIGHT` to its language's
log-score: decisive on a short phrase, small beside the model's margin on a full sentence. With it,
219 of 219 everyday phrases in tests/text/test_detect_sentences.py come out right (the model alone:
210) and 356 of 372 corpus sentences (alone: 353); what is left is one-word text and text that is
mostly numbers, names or abbreviations ("In 2024.", "Saat 10:30.").
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import Any

from xtts_server.errors import InvalidText
from xtts_server.text.detect_words import FREQUENT_WORDS, TELLING_LETTERS
from xtts_server.text.extras import require

#: The Latin-script languages among the 17, as the statistical model names them.
LATIN_LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "it", "pt", "pl", "tr", "nl", "cs", "hu")

#: What "auto" gives for text with no letters at all ("123", "!!!").
DEFAULT_LANGUAGE = "en"

# One CJK character carries about as much as a short Latin word; weigh it so that Chinese with an
# English name in it stays Chinese, while English naming one city in kanji stays English.
_WEIGHTS = {"hangul": 3, "kana": 3, "han": 3}

# One frequent word, in the n-gram model's log-score units. Tried on short everyday phrases (ours, 110
# of them, plus a held-out 110): 5 to 12 all fix the phrases without costing a full sentence; the
# low end lost two held-out phrases, 20 started to override the model where it was right.
_WORD_WEIGHT = 8.0
_WORD = re.compile(r"[^\W\d_]+")  # runs of letters
_WORD_SETS = {lang: frozenset(words.split()) for lang, words in FREQUENT_WORDS.items()}
# A word several languages share counts for each in proportion ("de": es, fr, pt, nl, tr, hu).
_WORD_SHARE = {
    word: 1.0 / sum(word in words for words in _WORD_SETS.values())
    for words in _WORD_SETS.values()
    for word in words
}

_lock = threading.Lock()
_identifier: Any = None


def _script(char: str) -> str | None:
    """The writing system of a letter, or None for anything that is not a letter."""
    if not char.isalpha():
        return None
    code = ord(char)
    if 0xAC00 <= code <= 0xD7A3 or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
        return "hangul"
    if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9F:
        return "kana"
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF or code >= 0x20000:
        return "han"
    if 0x0600 <= code <= 0x06FF or 0x0750 <= code <= 0x077F or 0xFB50 <= code <= 0xFEFF:
        return "arabic"
    if 0x0900 <= code <= 0x097F:
        return "devanagari"
    if 0x0400 <= code <= 0x04FF:
        return "cyrillic"
    name = unicodedata.name(char, "")
    return "latin" if name.startswith(("LATIN", "FULLWIDTH LATIN")) else "other"


def _latin_identifier() -> Any:
    global _identifier
    with _lock:
        if _identifier is None:
            langid = require("py3langid.langid", "language='auto'")
            identifier = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE)
            identifier.set_languages(list(LATIN_LANGUAGES))
            _identifier = identifier
        return _identifier


def detect_language(text: str) -> str:
    """One of `LANGUAGES` for `text` ("zh-cn" for Chinese). InvalidText for empty or whitespace-only text.

    Text without letters (digits, punctuation, emoji only) gives DEFAULT_LANGUAGE.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidText("text is empty or only whitespace; there is no language to detect")
    counts: dict[str, int] = {}
    for char in text:
        script = _script(char)
        if script is not None:
            counts[script] = counts.get(script, 0) + _WEIGHTS.get(script, 1)
    if not counts:
        return DEFAULT_LANGUAGE
    if counts.get("kana", 0) and counts.get("kana", 0) + counts.get("han", 0) >= counts.get("latin", 0):
        return "ja"  # kanji + kana; pure kanji is taken for Chinese below
    dominant = max(counts, key=lambda script: (counts[script], script))
    by_script = {
        "hangul": "ko",
        "kana": "ja",
        "han": "zh-cn",
        "arabic": "ar",
        "devanagari": "hi",
        "cyrillic": "ru",
    }
    if dominant in by_script:
        return by_script[dominant]
    return _latin_language(text)


def _word_evidence(text: str) -> dict[str, float]:
    """Per language: its frequent words in `text` (shared ones in part) and its telling letters."""
    evidence: dict[str, float] = {}
    lower = text.lower()
    for word in _WORD.findall(lower):
        share = _WORD_SHARE.get(word)
        if share is not None:
            for lang, words in _WORD_SETS.items():
                if word in words:
                    evidence[lang] = evidence.get(lang, 0.0) + share
    for lang, letters in TELLING_LETTERS.items():
        found = sum(1 for letter in letters if letter in lower or letter in text)  # "İ" lowers to "i̇"
        if found:
            evidence[lang] = evidence.get(lang, 0.0) + found
    return evidence


def _latin_language(text: str) -> str:
    evidence = _word_evidence(text)
    ranked: list[tuple[str, float]] = _latin_identifier().rank(text)
    language, _score = max(ranked, key=lambda item: item[1] + _WORD_WEIGHT * evidence.get(item[0], 0.0))
    return str(language)
