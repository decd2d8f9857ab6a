"""Text to XTTS v2 token ids, the same ids as the reference's inference path.

`Tokenizer.encode(text, language)` equals what coqui-tts 0.28 `Xtts.inference` feeds the GPT:
`VoiceBpeTokenizer.encode(text.strip().lower(), language.split("-")[0])`, i.e. language cleaners,
then "[lang]" + text with every space written "[SPACE]", then the vocab's BPE. Only where the
reference raises on valid text (numbers in Hindi, Czech ordinals, huge numbers) do we differ, by
reading the text instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer

from xtts_server.errors import InvalidText, MissingExtra, ModelLoadError, UnsupportedLanguage
from xtts_server.text.languages import LANGUAGES, base_language, char_limit, normalize_language
from xtts_server.text.normalize import normalize_text

_REQUIRED_TOKENS = ("[START]", "[STOP]", "[SPACE]", "[UNK]")


class Tokenizer:
    """A released or test `vocab.json` plus the reference's per-language text front end."""

    def __init__(self, hf_tokenizer: HFTokenizer, source: str = "<memory>") -> None:
        vocab = hf_tokenizer.get_vocab(with_added_tokens=True)
        missing = [token for token in _REQUIRED_TOKENS if token not in vocab]
        if missing:
            raise ModelLoadError(
                f"vocab {source} lacks the special token(s) {', '.join(missing)}; "
                "it is not an XTTS vocab.json"
            )
        self._hf = hf_tokenizer
        self._vocab = vocab
        self._source = source
        self._start_id = vocab["[START]"]
        self._stop_id = vocab["[STOP]"]
        # The reference sizes the text embedding as the largest id + 1, not the number of entries.
        self._vocab_size = max(vocab.values()) + 1

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Load a vocab.json; ModelLoadError if it is missing, unreadable, or not an XTTS vocab."""
        file = Path(path)
        if not file.is_file():
            raise ModelLoadError(f"vocab file not found: {file} (the model directory needs its vocab.json)")
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"cannot read vocab file {file}: {exc}") from exc
        return cls.from_str(text, source=str(file))

    @classmethod
    def from_str(cls, json_text: str, source: str = "<memory>") -> Tokenizer:
        """Build from the text of a vocab.json (e.g. `build_test_vocab()`)."""
        try:
            json.loads(json_text)
            hf = HFTokenizer.from_str(json_text)
        except Exception as exc:  # json errors, and tokenizers' own Exception for a bad model
            raise ModelLoadError(f"vocab {source} is not a valid tokenizers JSON file: {exc}") from exc
        return cls(hf, source)

    @property
    def start_id(self) -> int:
        """Id of [START], put before the text tokens (261 in the release)."""
        return self._start_id

    @property
    def stop_id(self) -> int:
        """Id of [STOP], put after the text tokens (0 in the release)."""
        return self._stop_id

    @property
    def vocab_size(self) -> int:
        """Largest id + 1: the number of rows the text embedding must have (6681 for XTTS v2)."""
        return self._vocab_size

    @property
    def languages(self) -> tuple[str, ...]:
        """The codes of LANGUAGES whose "[lang]" token this vocab has (all 17 for v2)."""
        return tuple(code for code in LANGUAGES if f"[{code}]" in self._vocab)

    def token_id(self, token: str) -> int | None:
        """The id of a token such as "[en]", or None if the vocab has no such token."""
        return self._vocab.get(token)

    def normalize(self, text: str, language: str) -> str:
        """The text the BPE sees for `text` (without the "[lang]" tag and before "[SPACE]"), for debugging."""
        lang = base_language(language)
        return normalize_text(_prepare(text), lang)

    def encode(self, text: str, language: str) -> list[int]:
        """Token ids of one chunk of text, starting with the language token (no [START]/[STOP]).

        `language` is any spelling `normalize_language` accepts ("en", "en-US", "zh", "zh-cn", "pt_BR").
        Raises InvalidText for empty or whitespace-only text, UnsupportedLanguage for an unknown language
        or one this vocab has no token for, MissingExtra for zh/ja without their extra installed.
        """
        lang = base_language(language)
        tag = "[zh-cn]" if lang == "zh" else f"[{lang}]"
        if tag not in self._vocab:
            raise UnsupportedLanguage(
                f"this model's vocab ({self._source}) has no {tag} token; "
                f"it speaks: {', '.join(self.languages)}"
            )
        cleaned = normalize_text(_prepare(text), lang)
        return list(self._hf.encode(f"{tag}{cleaned}".replace(" ", "[SPACE]")).ids)

    def warm_up(self, languages: Iterable[str] | None = None) -> list[str]:
        """Load each language's front end now (pypinyin's dictionary takes ~1 s on first use).

        With `languages=None`, every language of this vocab whose extra is installed; returns the
        languages warmed. Naming a language whose extra is missing raises MissingExtra.
        """
        warmed = []
        for code in self.languages if languages is None else languages:
            lang = base_language(code)
            try:
                self.encode(_WARM_UP_TEXT.get(lang, "1"), lang)
            except MissingExtra:
                if languages is not None:
                    raise
                continue
            warmed.append(normalize_language(lang))
        return warmed

    def decode(self, ids: list[int]) -> str:
        """Rough text of token ids ([SPACE] as a space, [STOP] and [UNK] dropped), for logs and tests."""
        text = self._hf.decode(ids, skip_special_tokens=False).replace(" ", "")
        return text.replace("[SPACE]", " ").replace("[STOP]", "").replace("[UNK]", "")

    def char_limit(self, language: str) -> int:
        """Characters per chunk the model was trained on for this language (see `languages.CHAR_LIMITS`)."""
        return char_limit(language)


_WARM_UP_TEXT = {"zh": "你好, 1", "ja": "東京, 1", "ko": "안녕, 1"}


def _prepare(text: str) -> str:
    """`Xtts.inference`'s own step before the tokenizer: strip and lower-case; reject empty text."""
    if not isinstance(text, str):
        raise InvalidText(f"text must be a string, not {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise InvalidText("text is empty or only whitespace; there is nothing to say")
    try:
        stripped.encode("utf-8")
    except UnicodeEncodeError as e:  # JSON can carry "\ud800"; the tokenizer (Rust) cannot
        code = ord(stripped[e.start])
        raise InvalidText(
            f"text contains U+{code:04X} at {e.start}, half of a UTF-16 surrogate pair and not a character"
        ) from None
    return stripped.lower()
