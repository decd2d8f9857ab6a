from __future__ import annotations

import builtins
import sys
from typing import Any

import pytest

from xtts_server.errors import MissingExtra
from xtts_server.text import Tokenizer
from xtts_server.text.normalize import normalize_text
from xtts_server.text.normalize.chinese_numbers import normalize_chinese_numbers, number_to_chinese
from xtts_server.text.normalize.czech_ordinals import czech_ordinal
from xtts_server.text.normalize.hindi_numbers import hindi_cardinal
from xtts_server.text.normalize.korean import romanize_hangul


@pytest.mark.parametrize(
    ("hangul", "latin"),
    [("물엿", "mul-yeos"), ("안녕하세요", "annyeonghase-yo"), ("한국어", "hangug-eo"), ("abc 가", "abc ga")],
)
def test_korean_romanisation(hangul: str, latin: str) -> None:
    assert romanize_hangul(hangul) == latin


@pytest.mark.parametrize(
    ("number", "chinese"),
    [
        ("0", "零"),
        ("10", "十"),
        ("15", "十五"),
        ("20", "二十"),
        ("2000", "两千"),
        ("22000", "两万两千"),
        ("1000005", "一百万零五"),
        ("100000", "十万"),
        ("12.5", "十二点五"),
        ("00.5", "零点五"),
    ],
)
def test_chinese_cardinals(number: str, chinese: str) -> None:
    assert number_to_chinese(number) == chinese


def test_chinese_rewriters() -> None:
    assert normalize_chinese_numbers("今天是2024年5月3日。") == "今天是二零二四年五月三日,"
    assert normalize_chinese_numbers("增长了12.5%") == "增长了百分之十二点五"
    assert normalize_chinese_numbers("三分之一是1/3") == "三分之一是三分之一"
    assert normalize_chinese_numbers("P2P") == "P2P"


def test_hindi_numbers_where_the_reference_has_none() -> None:
    assert hindi_cardinal(1234567) == "बारह लाख चौंतीस हज़ार पाँच सौ सड़सठ"
    assert hindi_cardinal(99) == "निन्यानबे"
    assert normalize_text("मेरे पास 14% बैटरी है।", "hi") == "मेरे पास चौदह प्रतिशत बैटरी है।"
    assert normalize_text("यह $20 है", "hi") == "यह बीस डॉलर है"
    assert normalize_text("शहर में 1,00,000 लोग", "hi") == "शहर में एक लाख लोग"
    # Without ASCII digits the reference's own path runs (Devanagari digits are left alone).
    assert normalize_text("संख्या १२३", "hi") == "संख्या १२३"


def test_czech_ordinals_where_the_reference_raises() -> None:
    assert czech_ordinal(1) == "první"
    assert czech_ordinal(21) == "dvacátý první"
    assert czech_ordinal(100) == "stý"
    assert normalize_text("1. den", "cs") == "první den"
    assert normalize_text("v roce 1990.", "cs") == "v roce tisíc devětset devadesát."


def test_huge_numbers_are_read_digit_by_digit() -> None:
    digits = "1" * 60
    assert normalize_text(f"es {digits}", "es") == "es " + " ".join(["uno"] * 60)


def test_korean_ordinal_num2words_cannot_spell_keeps_its_counter() -> None:
    assert normalize_text("100번째", "ko") == "baeg beon-jjae"


def test_turkish_capital_i_follows_the_reference() -> None:
    # Lower-casing first (as Xtts.inference does) turns İ into i + U+0307, and the reference keeps that.
    assert normalize_text("i̇stanbul", "tr") == "i̇stanbul"


@pytest.mark.parametrize(
    ("module", "lang", "text", "extra"), [("pypinyin", "zh", "你好", "zh"), ("cutlet", "ja", "東京", "ja")]
)
def test_missing_extra_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tokenizer: Tokenizer, module: str, lang: str, text: str, extra: str
) -> None:
    import xtts_server.text.normalize.japanese as japanese

    monkeypatch.setattr(japanese, "_katsu", None)
    real_import = builtins.__import__

    def failing_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == module:
            raise ImportError(f"No module named {module!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setattr(builtins, "__import__", failing_import)
    with pytest.raises(MissingExtra) as excinfo:
        tokenizer.encode(text, lang)
    assert f"pip install 'xtts-server[{extra}]'" in str(excinfo.value)
    assert isinstance(excinfo.value, ImportError)
