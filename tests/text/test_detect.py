from __future__ import annotations

import json
from pathlib import Path

import pytest

from xtts_server.errors import InvalidText
from xtts_server.text import LANGUAGES
from xtts_server.text.detect import DEFAULT_LANGUAGE, detect_language

CORPUS = Path(__file__).with_name("corpus.jsonl")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("The quick brown fox jumps over the lazy dog.", "en"),
        ("El rápido zorro marrón salta sobre el perro perezoso.", "es"),
        ("Le renard brun rapide saute par-dessus le chien paresseux.", "fr"),
        ("Der schnelle braune Fuchs springt über den faulen Hund.", "de"),
        ("La volpe marrone veloce salta sopra il cane pigro.", "it"),
        ("A rápida raposa marrom pula sobre o cão preguiçoso.", "pt"),
        ("Szybki brązowy lis przeskakuje nad leniwym psem.", "pl"),
        ("Hızlı kahverengi tilki tembel köpeğin üzerinden atlar.", "tr"),
        ("Быстрая коричневая лиса прыгает через ленивую собаку.", "ru"),
        ("De snelle bruine vos springt over de luie hond.", "nl"),
        ("Rychlá hnědá liška skáče přes líného psa.", "cs"),
        ("الثعلب البني السريع يقفز فوق الكلب الكسول.", "ar"),
        ("敏捷的棕色狐狸跳过了懒狗。", "zh-cn"),
        ("A gyors barna róka átugorja a lusta kutyát.", "hu"),
        ("빠른 갈색 여우가 게으른 개를 뛰어넘는다.", "ko"),
        ("素早い茶色の狐が怠け者の犬を飛び越える。", "ja"),
        ("तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है।", "hi"),
    ],
)
def test_each_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_mixed_scripts_follow_the_weight_of_each() -> None:
    assert detect_language("Mixed scripts: Москва, 東京, and Paris.") == "en"
    assert detect_language("英文 Hello World 混合。") == "zh-cn"


def test_no_letters_gives_the_default() -> None:
    assert detect_language("123 456 !!! 😀") == DEFAULT_LANGUAGE


@pytest.mark.parametrize("text", ["", "  \n"])
def test_empty_text_is_invalid(text: str) -> None:
    with pytest.raises(InvalidText):
        detect_language(text)


def test_accuracy_on_the_corpus() -> None:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if len(r["text"].strip()) >= 20 and r["id"][:7] != "special"]
    correct = 0
    for row in rows:
        expected = "zh-cn" if row["lang"].startswith("zh") else row["lang"].split("-")[0]
        detected = detect_language(row["text"])
        assert detected in LANGUAGES
        correct += detected == expected
    assert correct / len(rows) >= 0.95, correct / len(rows)
