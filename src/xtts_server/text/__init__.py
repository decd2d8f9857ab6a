"""The text front end: languages, normalisation, tokenizer, detection and sentence splitting.

Heavy language packages (pypinyin for Chinese, cutlet/fugashi/unidic-lite for Japanese, py3langid for
language detection) are imported only when needed; without them the rest works and those languages
raise MissingExtra naming the pip extra to install.
"""

from __future__ import annotations

from xtts_server.text.detect import detect_language
from xtts_server.text.languages import CHAR_LIMITS, LANGUAGES, char_limit, normalize_language
from xtts_server.text.split import IncrementalSplitter, split_sentences
from xtts_server.text.tokenizer import Tokenizer
from xtts_server.text.vocab import build_test_vocab

__all__ = [
    "CHAR_LIMITS",
    "LANGUAGES",
    "IncrementalSplitter",
    "Tokenizer",
    "build_test_vocab",
    "char_limit",
    "detect_language",
    "normalize_language",
    "split_sentences",
]
