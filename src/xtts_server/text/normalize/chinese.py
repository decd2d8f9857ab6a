"""Chinese characters to pinyin with tone numbers (pypinyin, style TONE3): the `zh` extra."""

from __future__ import annotations

from xtts_server.text.extras import require


def to_pinyin(text: str) -> str:
    """ "你好, abc" -> "ni3hao3, abc": syllables run together, anything else kept as it is, neutral tone 5."""
    pypinyin = require("pypinyin", "Chinese text")
    syllables = pypinyin.pinyin(
        text, style=pypinyin.Style.TONE3, heteronym=False, neutral_tone_with_five=True
    )
    return "".join(choices[0] for choices in syllables)
