from __future__ import annotations

import pytest

from xtts_server.text import Tokenizer, build_test_vocab


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_str(build_test_vocab())
