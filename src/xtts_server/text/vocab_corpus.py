"""The generated corpus and alphabet behind the test vocabulary (see `vocab.build_test_vocab`).

Everything here is produced by code from fixed inputs (num2words in each language, our own number
readers, a committed word list, generated pinyin and kana syllables), so the vocabulary it yields is
reproducible byte for byte.
"""

from __future__ import annotations

import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator

from num2words import num2words

from xtts_server.text.normalize.hindi_numbers import hindi_cardinal
from xtts_server.text.normalize.korean import romanize_hangul
from xtts_server.text.normalize.word_tables import ABBREVIATIONS, SYMBOLS
from xtts_server.text.vocab_words import COMMON_WORDS

# Languages whose numbers num2words spells (Hindi has our own reader; zh and ja are romanised first).
_NUM2WORDS_LANGS = ("en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "hu", "ko")


def _code_points(first: int, last: int) -> str:
    return "".join(chr(c) for c in range(first, last + 1))


def alphabet() -> list[str]:
    """Every character the cleaned text of the 17 languages normally holds, in code-point order."""
    chars = set(string.ascii_letters + string.digits + string.punctuation)
    chars.update(c for c in _code_points(0x00C0, 0x00FF) if c not in "×÷")  # Latin-1 letters
    chars.update("¡¿«»°£€´·ºª§")
    chars.update(_code_points(0x0100, 0x017F))  # Latin Extended-A: Polish, Czech, Turkish, Hungarian ...
    chars.update(_code_points(0x0300, 0x0308))  # combining accents; "İ".lower() leaves U+0307 behind
    chars.update(_code_points(0x0400, 0x045F))  # Cyrillic
    chars.update("،؛؟ـ")
    chars.update(_code_points(0x0621, 0x063A))  # Arabic letters
    chars.update(_code_points(0x0641, 0x0652))  # Arabic letters and harakat
    chars.update(_code_points(0x0660, 0x0670))  # Arabic-Indic digits, superscript alef
    chars.update("پچڤکگی")
    chars.update(_code_points(0x0900, 0x097F))  # Devanagari
    chars.update("–—‘’‚“”„…‹›•")
    return sorted(chars)


def _is_word_char(char: str) -> bool:
    # The same classes as the vocab's Whitespace pre-tokenizer (\w in the Rust regex): letters, marks,
    # numbers and connector punctuation.
    category = unicodedata.category(char)
    return category[0] in "LMN" or category == "Pc"


def pre_tokenize(text: str) -> Iterator[str]:
    """Split as the Whitespace pre-tokenizer does: runs of word characters, runs of other non-spaces."""
    run: list[str] = []
    run_is_word = False
    for char in text:
        if char.isspace():
            if run:
                yield "".join(run)
            run = []
            continue
        is_word = _is_word_char(char)
        if run and is_word != run_is_word:
            yield "".join(run)
            run = []
        run.append(char)
        run_is_word = is_word
    if run:
        yield "".join(run)


def _spelled(value: int | float, lang: str, **options: str | bool) -> Iterator[str]:
    try:
        yield str(num2words(value, lang=lang, **options))
    except Exception:  # some languages lack some forms (Korean ordinals of 100, currencies)
        return


def _numbers_in_words(lang: str) -> Iterator[str]:
    values = [*range(0, 1101), *(1000 * k for k in range(2, 21)), *range(1900, 2031), 10**6, 10**9]
    for value in values:
        yield from _spelled(value, lang)
    for value in range(1, 121):
        yield from _spelled(value, lang, ordinal=True)
    for fraction in (0.5, 1.25, 3.14, 12.5, 99.99):
        yield from _spelled(fraction, lang)
    for currency in ("USD", "GBP", "EUR"):
        for amount in (1.0, 2.0, 5.0, 20.15, 100.0, 1.01):
            yield from _spelled(amount, lang, to="currency", currency=currency)


def _pinyin_syllables() -> Iterator[str]:
    initials: tuple[str, ...] = ("b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x")
    initials += ("zh", "ch", "sh", "r", "z", "c", "s", "y", "w", "")
    finals: tuple[str, ...] = (
        "a",
        "o",
        "e",
        "i",
        "u",
        "v",
        "ai",
        "ei",
        "ao",
        "ou",
        "an",
        "en",
        "ang",
        "eng",
        "ong",
        "er",
    )
    finals += ("ia", "ie", "iao", "iu", "ian", "in", "iang", "ing", "iong")
    finals += ("ua", "uo", "uai", "ui", "uan", "un", "uang", "ue", "ve")
    for initial in initials:
        for final in finals:
            for tone in "12345":
                yield initial + final + tone


def _kana_romaji() -> Iterator[str]:
    consonants = [
        "",
        "k",
        "s",
        "t",
        "n",
        "h",
        "m",
        "y",
        "r",
        "w",
        "g",
        "z",
        "d",
        "b",
        "p",
        "sh",
        "ch",
        "ts",
        "j",
    ]
    for consonant in consonants:
        for vowel in "aiueo":
            yield consonant + vowel
            yield consonant + vowel + "n"
            yield consonant + vowel + vowel


def corpus_texts() -> Iterator[tuple[str, str]]:
    """(language, text) pairs, already in the form the cleaners hand to the BPE."""
    for lang in _NUM2WORDS_LANGS:
        for text in _numbers_in_words(lang):
            yield lang, romanize_hangul(text) if lang == "ko" else text
    for value in [*range(0, 1101), 10**5, 10**7, 2024]:
        yield "hi", hindi_cardinal(value)
    for lang, words in COMMON_WORDS.items():
        yield lang, romanize_hangul(words) if lang == "ko" else words
    for lang, pairs in [*ABBREVIATIONS.items(), *SYMBOLS.items()]:
        if lang == "zh":
            continue  # written in characters; the BPE sees pinyin
        for _, word in pairs:
            yield lang, romanize_hangul(word) if lang == "ko" else word
    yield "zh", " ".join(_pinyin_syllables())
    yield "ja", " ".join(_kana_romaji())
    # Romanised Korean syllables, every 7th of the 11,172, and Korean words as the BPE will see them.
    yield "ko", " ".join(romanize_hangul(chr(c)) for c in range(0xAC00, 0xD7A4, 7))


def word_counts(texts: Iterable[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(pre_tokenize(text))
    return counts
