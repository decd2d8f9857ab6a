from __future__ import annotations

import json
import os
import subprocess
import sys

from xtts_server.text import build_test_vocab
from xtts_server.text.vocab import SPECIAL_TOKEN_IDS, TEST_VOCAB_SIZE, vocab_sha256
from xtts_server.text.vocab_corpus import alphabet


def test_vocab_has_exactly_the_ids_0_to_6680() -> None:
    vocab = json.loads(build_test_vocab())["model"]["vocab"]
    assert sorted(vocab.values()) == list(range(TEST_VOCAB_SIZE))
    assert TEST_VOCAB_SIZE == 6681


def test_special_tokens_sit_at_the_release_ids() -> None:
    document = json.loads(build_test_vocab())
    vocab = document["model"]["vocab"]
    for token, token_id in {"[STOP]": 0, "[UNK]": 1, "[SPACE]": 2, "[START]": 261, "[en]": 259}.items():
        assert vocab[token] == token_id
    added = {t["content"]: t["id"] for t in document["added_tokens"]}
    assert added == SPECIAL_TOKEN_IDS
    assert all(t["special"] and not t["normalized"] for t in document["added_tokens"])


def test_file_format_is_the_release_format() -> None:
    document = json.loads(build_test_vocab())
    assert document["normalizer"] is None
    assert document["pre_tokenizer"] == {"type": "Whitespace"}
    model = document["model"]
    assert model["type"] == "BPE"
    assert model["unk_token"] == "[UNK]"
    vocab = model["vocab"]
    for merge in model["merges"]:
        left, right = merge.split(" ")
        assert left in vocab and right in vocab and left + right in vocab


def test_alphabet_covers_the_scripts_of_the_cleaned_text() -> None:
    vocab = json.loads(build_test_vocab())["model"]["vocab"]
    letters = set(alphabet())
    for sample in [
        "žluťoučký kůň",
        "ąęłńóśźż",
        "őű ğış",
        "ёжик",
        "مرحبا",
        "नमस्ते",
        "lv4",
        "i\u0307",
        "¿¡«»–—…",
    ]:
        for char in sample.replace(" ", ""):
            assert char in letters and char in vocab, char


def test_same_bytes_in_a_fresh_process_with_another_hash_seed() -> None:
    code = "from xtts_server.text.vocab import vocab_sha256; print(vocab_sha256())"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == vocab_sha256()
