"""The 17 languages XTTS v2 speaks, how callers may name them, and their per-chunk text limits."""

from __future__ import annotations

from xtts_server.errors import UnsupportedLanguage

#: The codes of the released model's config.json, in its order. "zh-cn" is the model's name for Chinese.
LANGUAGES: tuple[str, ...] = (
    "en",
    "es",
    "fr",
    "de",
    "it",
    "pt",
    "pl",
    "tr",
    "ru",
    "nl",
    "cs",
    "ar",
    "zh-cn",
    "hu",
    "ko",
    "ja",
    "hi",
)

# The reference keys its tables by the code before the first "-", so Chinese is "zh" inside.
_BASE_CODES: frozenset[str] = frozenset(code.split("-")[0] for code in LANGUAGES)

#: Characters per chunk above which the reference warns that audio may be cut short
#: (`VoiceBpeTokenizer.char_limits` in coqui-tts). The model was trained on chunks of about this size.
CHAR_LIMITS: dict[str, int] = {
    "en": 250,
    "de": 253,
    "fr": 273,
    "es": 239,
    "it": 213,
    "pt": 203,
    "pl": 224,
    "zh": 82,
    "ar": 166,
    "cs": 186,
    "ru": 182,
    "nl": 251,
    "tr": 226,
    "ja": 71,
    "hu": 224,
    "ko": 95,
    "hi": 150,
}


def base_language(code: str) -> str:
    """The reference's internal key for a language code: "en-US" -> "en", "zh-cn" -> "zh", "pt_BR" -> "pt".

    Raises UnsupportedLanguage, naming the supported codes, for anything the model does not speak.
    """
    if not isinstance(code, str):
        raise UnsupportedLanguage(f"language must be a string such as 'en', not {type(code).__name__}")
    base = code.strip().lower().replace("_", "-").split("-")[0]
    if base not in _BASE_CODES:
        raise UnsupportedLanguage(
            f"unsupported language {code!r}; XTTS v2 speaks: {', '.join(LANGUAGES)} "
            "(a region suffix such as 'en-US' or 'pt-BR' is accepted and ignored)"
        )
    return base


def normalize_language(code: str) -> str:
    """One of LANGUAGES for any accepted spelling: "en-US" -> "en", "zh" / "zh-CN" / "zh-tw" -> "zh-cn"."""
    base = base_language(code)
    return "zh-cn" if base == "zh" else base


def char_limit(language: str) -> int:
    """The reference's character limit per chunk for this language (e.g. 250 for English, 82 for Chinese)."""
    return CHAR_LIMITS[base_language(language)]
