from __future__ import annotations

import random
import sys

import pytest

from xtts_server.text.languages import char_limit
from xtts_server.text.split import _NON_SPACE, IncrementalSplitter, split_sentences

ENGLISH = (
    'Hello Dr. Smith. It costs 3.5 dollars, or $3.50! Is that right? Yes… he said "no." '
    "Then J. R. R. Tolkien wrote e.g. books, etc. and more.\nA new line starts here. "
    "Visit example.com. Mrs. Jones arrived at 10.30 p.m. today."
)
TEXTS = {
    "en": ENGLISH,
    "de": "Am 1. Mai ist Feiertag. Fr. Dr. Müller kommt um 12.30 Uhr. Im Jahr 1990. Danach nicht mehr!",
    "zh-cn": "你好。我很好！你呢？「好的。」他说今天是3.5度。谢谢",
    "ja": "こんにちは。元気ですか？はい、元気です！",
    "hi": "नमस्ते। आप कैसे हैं? मैं ठीक हूँ।",
    "ar": "مرحبا بالعالم. كيف حالك؟ أنا بخير.",
    "cs": "1. den byl dlouhý. Ing. Novák přišel. Bylo to v roce 1990. Konec.",
}


def test_sentences_abbreviations_and_decimals_stay_whole() -> None:
    assert split_sentences(ENGLISH, "en") == [
        "Hello Dr. Smith.",
        "It costs 3.5 dollars, or $3.50!",
        "Is that right?",
        'Yes… he said "no."',
        "Then J. R. R. Tolkien wrote e.g. books, etc. and more.",
        "A new line starts here.",
        "Visit example.com.",
        "Mrs. Jones arrived at 10.30 p.m. today.",
    ]


def test_german_ordinals_and_czech_abbreviations() -> None:
    assert split_sentences(TEXTS["de"], "de") == [
        "Am 1. Mai ist Feiertag.",
        "Fr. Dr. Müller kommt um 12.30 Uhr.",
        "Im Jahr 1990.",
        "Danach nicht mehr!",
    ]
    assert split_sentences(TEXTS["cs"], "cs") == [
        "1. den byl dlouhý.",
        "Ing. Novák přišel.",
        "Bylo to v roce 1990.",
        "Konec.",
    ]


def test_cjk_punctuation_ends_sentences_without_spaces() -> None:
    assert split_sentences(TEXTS["zh-cn"], "zh") == [
        "你好。",
        "我很好！",
        "你呢？",
        "「好的。」",
        "他说今天是3.5度。",
        "谢谢",
    ]
    assert split_sentences(TEXTS["ja"], "ja") == ["こんにちは。", "元気ですか？", "はい、元気です！"]


def test_danda_and_arabic_question_mark() -> None:
    assert split_sentences(TEXTS["hi"], "hi") == ["नमस्ते।", "आप कैसे हैं?", "मैं ठीक हूँ।"]
    assert split_sentences(TEXTS["ar"], "ar") == ["مرحبا بالعالم.", "كيف حالك؟", "أنا بخير."]


@pytest.mark.parametrize("text", ["", "   ", "\n\n"])
def test_empty_text_gives_no_sentences(text: str) -> None:
    assert split_sentences(text, "en") == []


def test_long_sentence_is_cut_within_the_limit_and_never_inside_a_word() -> None:
    words = [f"word{i}" for i in range(200)]
    text = " ".join(words[:30]) + ", " + " ".join(words[30:]) + "."
    pieces = split_sentences(text, "en")
    assert len(pieces) > 1
    assert all(len(p) <= char_limit("en") for p in pieces)
    assert " ".join(pieces).replace(",", "").split() == text.replace(",", "").split()
    assert pieces[0].endswith(",")  # a clause mark is preferred to a bare space


@pytest.mark.parametrize("limit", [10, 25, 60])
def test_custom_limit(limit: int) -> None:
    pieces = split_sentences(ENGLISH, "en", limit=limit)
    assert all(len(p) <= limit for p in pieces)
    assert "".join(pieces).replace(" ", "") == "".join(split_sentences(ENGLISH, "en")).replace(" ", "")


def test_long_chinese_sentence_is_cut_between_characters() -> None:
    text = "我们" * 100 + "。"
    pieces = split_sentences(text, "zh-cn")
    assert all(len(p) <= 82 for p in pieces)
    assert "".join(pieces) == text


def test_a_token_longer_than_the_limit_is_the_only_forced_cut() -> None:
    url = "https://example.com/" + "a" * 300
    pieces = split_sentences(f"See {url} now.", "en")
    assert all(len(p) <= 250 for p in pieces)
    assert "".join(pieces).replace(" ", "") == f"See{url}now."


def test_incremental_example_from_the_docs() -> None:
    splitter = IncrementalSplitter("en")
    assert splitter.push("Hel") == []
    assert splitter.push("lo Dr.") == []
    assert splitter.push(" Smi") == []
    assert splitter.push("th. How") == ["Hello Dr. Smith."]
    assert splitter.pending == "How"
    assert splitter.push(" are you? I") == ["How are you?"]
    assert splitter.flush() == ["I"]
    assert splitter.flush() == []


def test_incremental_waits_for_the_next_word_after_a_dot() -> None:
    splitter = IncrementalSplitter("en")
    assert splitter.push("It is 3.") == []  # could be "3.5"
    assert splitter.push("5 now. ") == []  # the next word might start in lower case
    assert splitter.push("t") == []  # "now. t..." continues the sentence
    assert splitter.push("hen. Next") == ["It is 3.5 now. then."]


def test_incremental_releases_at_a_line_break_at_once() -> None:
    splitter = IncrementalSplitter("en")
    assert splitter.push("# Title\n") == ["# Title"]


def test_incremental_releases_an_over_long_sentence_in_pieces_while_it_streams() -> None:
    splitter = IncrementalSplitter("en", limit=30)
    released = []
    for word in [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "iota",
        "kappa",
        "lambda",
        "mu",
    ]:
        released += splitter.push(word + " ")
    assert released and all(len(p) <= 30 for p in released)
    assert released + splitter.flush() == split_sentences(
        "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu ", "en", limit=30
    )


def _fragments(text: str, rng: random.Random, max_size: int) -> list[str]:
    pieces, i = [], 0
    while i < len(text):
        size = rng.randint(1, max_size)
        pieces.append(text[i : i + size])
        i += size
    return pieces


@pytest.mark.parametrize("lang", sorted(TEXTS))
@pytest.mark.parametrize("limit", [None, 20])
def test_fragments_of_every_size_give_the_sentences_of_the_whole_text(lang: str, limit: int | None) -> None:
    text = TEXTS[lang]
    expected = split_sentences(text, lang, limit)
    rng = random.Random(lang)
    for max_size in (1, 2, 3, 5, 8, 13, len(text)):
        for _ in range(5):
            splitter = IncrementalSplitter(lang, limit)
            released: list[str] = []
            for fragment in _fragments(text, rng, max_size):
                released += splitter.push(fragment)
            assert released + splitter.flush() == expected, max_size


def test_random_texts_split_the_same_whole_or_in_fragments_and_lose_nothing() -> None:
    tokens = ["Dr.", "3.5", "word", "Word", "longerword", ".", "!", "?", "…", "...", " ", " ", "\n", "。"]
    tokens += ['"', ")", "e.g.", "A.", "1.", "x", "你好", ",", "、", "؟", "।", "  "]
    rng = random.Random(7)
    for _ in range(2000):
        text = "".join(rng.choice(tokens) for _ in range(rng.randint(0, 40)))
        lang = rng.choice(["en", "de", "zh", "cs", "ar"])
        limit = rng.choice([None, 5, 12, 30])
        expected = split_sentences(text, lang, limit)
        assert all(len(p) <= (limit or char_limit(lang)) for p in expected)
        assert "".join(expected).split() == [] or "".join("".join(expected).split()) == "".join(text.split())
        splitter = IncrementalSplitter(lang, limit)
        released: list[str] = []
        for fragment in _fragments(text, rng, 4):
            released += splitter.push(fragment)
        assert released + splitter.flush() == expected, (text, lang, limit)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("xx.J. A", 4, ["xx.J", ".", "A"]),
        ("xx.J. A. B", 4, ["xx.J", ".", "A. B"]),
        ("3.5,?e.g.e.g.  Dr.、?.؟!Word.؟", 12, ["3.5,?e.g.e.g", ".", "Dr.、", "?.؟!Word.؟"]),
    ],
)
def test_after_a_forced_cut_the_next_piece_is_scanned_afresh(
    text: str, limit: int, expected: list[str]
) -> None:
    # The forced cut lands just before a dot that, read with the word before the cut ("J", "g"), would
    # not end a sentence; the piece after the cut is decided on its own, whole or streamed.
    assert split_sentences(text, "en", limit) == expected
    splitter = IncrementalSplitter("en", limit)
    released = [piece for char in text for piece in splitter.push(char)]
    assert released + splitter.flush() == expected


def test_the_splitter_drops_exactly_what_str_strip_drops() -> None:
    # split.py finds the next non-space with a regex; it must agree with str.strip() everywhere.
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        assert (_NON_SPACE.match(char) is None) == char.isspace(), hex(code)
