"""The name rule: what is accepted, what is refused with the rule stated, and when two names are one voice."""

from __future__ import annotations

import re

import pytest

from xtts_server.errors import InvalidRequest
from xtts_server.voices.names import MAX_NAME_LENGTH, NAME_RULE, file_stem, name_key, validate_name

VALID = [
    "alice",
    "Bob Smith",
    "v2.1_final-take",
    "a",
    "7",
    "x" * MAX_NAME_LENGTH,
    "Camilla Holmström",
    "Eugenio Mataracı",
    "李雷",
    "Ана",
    "हिन्दी",  # needs combining marks
    "Zoë",
]

INVALID = [
    ("", "empty"),
    ("x" * (MAX_NAME_LENGTH + 1), "65 characters"),
    (" alice", "space"),
    ("alice ", "space"),
    (".hidden", "starts with '.'"),
    ("..", "'.'"),
    ("a..b", "'..'"),
    ("../etc/passwd", "'.'"),
    ("a/b", "path separator"),
    ("a\\b", "path separator"),
    ("C:\\voices", "':'"),
    ("a\x00b", "U+0000"),
    ("a\nb", "U+000A"),
    ("a\tb", "U+0009"),
    ("a\u200db", "U+200D"),  # zero-width joiner: invisible
    ("a\u2028b", "U+2028"),
    ("smile😀", "'😀'"),
    ("a:b", "':'"),
    ("a*b", "'*'"),
    ("---", "no letter or digit"),
    ("_", "no letter or digit"),
]


@pytest.mark.parametrize("name", VALID)
def test_valid_names_are_kept_as_written(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(("name", "why"), INVALID)
def test_invalid_names_are_refused_with_the_rule(name: str, why: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_name(name)
    message = str(info.value)
    assert why in message
    assert NAME_RULE in message


def test_non_string_names_are_refused() -> None:
    for name in (None, 5, b"alice", ["alice"]):
        with pytest.raises(InvalidRequest, match="must be a string"):
            validate_name(name)


def test_names_are_stored_nfc() -> None:
    decomposed = "Zoe\u0308"  # e + combining diaeresis
    assert validate_name(decomposed) == "Zoë"


def test_same_voice_ignores_case_width_and_normal_form() -> None:
    same = ["Alice", "alice", "ALICE", "ＡＬＩＣＥ", "aLiCe"]
    assert len({name_key(n) for n in same}) == 1
    assert name_key("Zoe\u0308") == name_key("ZOË")
    assert name_key("Straße") == name_key("STRASSE")
    assert name_key("alice") != name_key("alice2")
    assert len({file_stem(name_key(n)) for n in same}) == 1


@pytest.mark.parametrize("name", [*VALID, *(n for n, _ in INVALID), "CON", "nul", "a" * 1000, "\ud800"])
def test_file_names_are_safe_for_any_input(name: str) -> None:
    stem = file_stem(name_key(name))
    assert re.fullmatch(r"[a-z0-9-]{1,24}_[0-9a-f]{32}", stem), stem


def test_file_names_differ_for_different_voices() -> None:
    names = [f"voice {i}" for i in range(500)] + VALID
    stems = {file_stem(name_key(n)) for n in names}
    assert len(stems) == len({name_key(n) for n in names})
    # Names without ASCII letters still get a readable, valid slug.
    assert file_stem(name_key("李雷")).startswith("voice_")
    assert file_stem(name_key("Camilla Holmström")).startswith("camilla-holmstrom_")
