from __future__ import annotations

import json
from pathlib import Path

import pytest

from xtts_server.errors import InvalidText, ModelLoadError, UnsupportedLanguage
from xtts_server.text import LANGUAGES, Tokenizer, build_test_vocab, char_limit, normalize_language


def test_properties_match_the_release_family(tokenizer: Tokenizer) -> None:
    assert tokenizer.start_id == 261
    assert tokenizer.stop_id == 0
    assert tokenizer.vocab_size == 6681
    assert tokenizer.languages == LANGUAGES


def test_english_sentence_is_cleaned_like_the_reference(tokenizer: Tokenizer) -> None:
    text = 'Hello Dr. Smith, it is $20.15 or 12.5% of 1,000,000 — "the 2nd" & #1!'
    assert tokenizer.normalize(text, "en") == (
        "hello doctor smith, it is twenty dollars, fifteen cents or twelve point five percent of "
        "one million — the second and hash one!"
    )


def test_encode_starts_with_the_language_token_and_spells_spaces(tokenizer: Tokenizer) -> None:
    ids = tokenizer.encode("  Hello World  ", "en")
    assert ids[0] == 259
    assert ids.count(2) == 1  # one [SPACE] between the two words, none from the outer whitespace
    assert tokenizer.decode(ids) == "[en]hello world"


@pytest.mark.parametrize(("code", "tag_id"), [("en-US", 259), ("EN", 259), ("pt-BR", 286), ("pt_BR", 286)])
def test_region_and_case_are_ignored(tokenizer: Tokenizer, code: str, tag_id: int) -> None:
    assert tokenizer.encode("Olá", code)[0] == tag_id


@pytest.mark.parametrize("code", ["zh", "zh-cn", "zh-CN", "zh-tw"])
def test_every_chinese_spelling_uses_the_zh_cn_token(tokenizer: Tokenizer, code: str) -> None:
    pytest.importorskip("pypinyin")
    assert tokenizer.encode("你好", code)[0] == 5023


@pytest.mark.parametrize("text", ["", " ", "\n\t  ", "\u3000"])
def test_empty_or_whitespace_text_is_invalid(tokenizer: Tokenizer, text: str) -> None:
    with pytest.raises(InvalidText, match="empty"):
        tokenizer.encode(text, "en")


def test_unknown_language_lists_the_supported_codes(tokenizer: Tokenizer) -> None:
    with pytest.raises(UnsupportedLanguage) as excinfo:
        tokenizer.encode("hello", "xx")
    message = str(excinfo.value)
    assert "'xx'" in message
    for code in LANGUAGES:
        assert code in message


def test_normalize_language() -> None:
    assert normalize_language("en-GB") == "en"
    assert normalize_language("ZH") == "zh-cn"
    assert normalize_language("zh-cn") == "zh-cn"
    with pytest.raises(UnsupportedLanguage):
        normalize_language("klingon")
    assert len(LANGUAGES) == 17


def test_char_limits_are_the_reference_values(tokenizer: Tokenizer) -> None:
    assert char_limit("en") == 250
    assert char_limit("zh-cn") == 82
    assert char_limit("ja") == 71
    assert tokenizer.char_limit("pt-BR") == 203


def test_missing_vocab_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        Tokenizer.from_file(tmp_path / "vocab.json")


def test_corrupt_vocab_file(tmp_path: Path) -> None:
    path = tmp_path / "vocab.json"
    path.write_text('{"model": {"type": "BPE", "vocab": ', encoding="utf-8")
    with pytest.raises(ModelLoadError, match="not a valid"):
        Tokenizer.from_file(path)


@pytest.mark.parametrize("token", ["[START]", "[STOP]", "[SPACE]"])
def test_vocab_without_a_required_token_is_rejected(tmp_path: Path, token: str) -> None:
    document = json.loads(build_test_vocab())
    document["added_tokens"] = [t for t in document["added_tokens"] if t["content"] != token]
    del document["model"]["vocab"][token]
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ModelLoadError, match=token.replace("[", r"\[").replace("]", r"\]")):
        Tokenizer.from_file(path)


def test_vocab_without_a_language_token_refuses_that_language(tmp_path: Path) -> None:
    document = json.loads(build_test_vocab())
    document["added_tokens"] = [t for t in document["added_tokens"] if t["content"] != "[hi]"]
    del document["model"]["vocab"]["[hi]"]
    tokenizer = Tokenizer.from_str(json.dumps(document))
    assert "hi" not in tokenizer.languages
    with pytest.raises(UnsupportedLanguage, match=r"\[hi\]"):
        tokenizer.encode("नमस्ते", "hi")
    assert tokenizer.encode("hello", "en")[0] == 259


def test_from_file_round_trip(tmp_path: Path, tokenizer: Tokenizer) -> None:
    path = tmp_path / "vocab.json"
    path.write_text(build_test_vocab(), encoding="utf-8")
    assert Tokenizer.from_file(path).encode("Hello there.", "en") == tokenizer.encode("Hello there.", "en")


def test_warm_up_loads_every_installed_language(tokenizer: Tokenizer) -> None:
    warmed = tokenizer.warm_up()
    assert {"en", "ko", "hi"} <= set(warmed)
    assert set(warmed) <= set(LANGUAGES)
    assert tokenizer.warm_up(["en-US"]) == ["en"]
