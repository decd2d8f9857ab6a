"""Record the reference text front end's output for our corpus, as golden files for CI.

Run in the oracle venv (coqui-tts 0.28.0 installed):

    PYTHONPATH=/work/main/src /work/oracle/venv/bin/python scripts/parity/make_text_golden.py

Writes
- tests/parity/golden/text_tokens.json: for every sentence of tests/text/corpus.jsonl, the token ids
  of the reference's inference path (`language.split("-")[0]`, `text.strip().lower()`,
  `VoiceBpeTokenizer.encode`) with the vocab from `build_test_vocab()`, the cleaned text, or the
  error the reference raised; plus the vocab's sha256 and the library versions used.
- tests/parity/golden/text_normalize_fuzz.json: the reference's cleaned text (`preprocess_text`) for
  generated number-heavy snippets in every language (seeded, so the inputs are reproducible), to
  cover number formats, Chinese number rewriting and Korean romanisation beyond the corpus.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
from xtts_server.text.languages import LANGUAGES

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "text" / "corpus.jsonl"
GOLDEN = ROOT / "tests" / "parity" / "golden"

# The reference's internal codes of the 17 languages ("zh" for "zh-cn"), in config.json's order.
_LANGS = tuple(code.split("-")[0] for code in LANGUAGES)


def _versions() -> dict[str, str]:
    names = ("coqui-tts", "num2words", "tokenizers", "pypinyin", "cutlet", "fugashi", "unidic-lite")
    return {name: importlib.metadata.version(name) for name in names}


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _fuzz_inputs(rng: random.Random) -> list[dict[str, str]]:
    def number(max_digits: int = 7) -> str:
        return str(rng.randrange(10 ** rng.randint(1, max_digits)))

    def digits(n: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(n))

    cases: list[dict[str, str]] = []
    latin_templates = [
        "{a}",
        "{a}.{b}",
        "{a},{b}",
        "{a},{c3},{c3}",
        "{a}.{c3}.{c3},{b}",
        "${a}",
        "${a}.{b2}",
        "{a}€",
        "{a},{b2}€",
        "£{a}",
        "€{a}",
        "{a}$",
        "{a}%",
        "{a}.",
        "{a}. x",
        "{a}st {a}nd {a}rd {a}th",
        "{a}º {a}ª {a}er {a}e {a}o {a}a",
        "{a}-й {a}-я {a}ste {a}de",
        "{a}inci {a}. {a}ik {a}번째 {a}번",
        "#{a} @ & °",
        "{long}",
        "0{a}",
        "{a}.{b}.{c3}",
        "$1.2.3 and £{a}",
    ]
    for lang in _LANGS:
        if lang in ("zh", "ja"):
            continue
        for _ in range(40):
            template = rng.choice(latin_templates)
            text = template.format(
                a=number(), b=number(3), b2=digits(2), c3=digits(3), long=digits(rng.randint(20, 70))
            )
            cases.append({"lang": lang, "text": text})
    zh_templates = [
        "{a}个",
        "{a}多个",
        "{a}.{b}元",
        "{a}元{b}角",
        "{y}年{m}月{d}日",
        "{m}月{d}号",
        "{a}%",
        "{a}.{b}％",
        "{a}/{b}",
        "电话{phone}",
        "座机0{area}-{seven}",
        "编号{long}",
        "{a}",
        "{a}.{b}",
        "0{a}",
        "00{a}",
        "{a}千克和{b}米",
        "P2P B2C O2O",
        "{a}，{b}。{a}！",
        "共{a}人，{long}",
        "{a} {b}",
    ]
    for _ in range(200):
        template = rng.choice(zh_templates)
        text = template.format(
            a=number(9),
            b=number(3),
            y=rng.choice(["19", "20"]) + digits(2),
            m=str(rng.randint(1, 12)),
            d=str(rng.randint(1, 31)),
            phone="1" + rng.choice(["38", "39", "50", "86", "77", "98"]) + digits(8),
            area=rng.choice(["10", "21", "755"]),
            seven=str(rng.randint(1, 9)) + digits(7),
            long=digits(rng.randint(4, 40)),
        )
        cases.append({"lang": "zh", "text": text})
    hangul = [chr(c) for c in range(0xAC00, 0xD7A4)]
    for _ in range(60):
        word = "".join(rng.choice(hangul) for _ in range(rng.randint(1, 6)))
        cases.append({"lang": "ko", "text": f"{word} {number(4)}"})
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vocab", type=Path, help="use this vocab.json instead of build_test_vocab()")
    args = parser.parse_args()

    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

    if args.vocab:
        vocab_text = args.vocab.read_text(encoding="utf-8")
    else:
        from xtts_server.text.vocab import build_test_vocab

        vocab_text = build_test_vocab()
    sha256 = hashlib.sha256(vocab_text.encode("utf-8")).hexdigest()

    with tempfile.TemporaryDirectory() as tmp:
        vocab_path = Path(tmp) / "vocab.json"
        vocab_path.write_text(vocab_text, encoding="utf-8")
        reference = VoiceBpeTokenizer(str(vocab_path))

        cases: list[dict[str, Any]] = []
        for line in CORPUS.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            language = row["lang"].split("-")[0]  # as Xtts.inference does
            sentence = row["text"].strip().lower()
            case: dict[str, Any] = {**row, "ids": None, "cleaned": None, "error": None}
            try:
                case["cleaned"] = reference.preprocess_text(sentence, language)
                case["ids"] = reference.encode(sentence, lang=language)
            except Exception as exc:
                case["error"] = _error(exc)
            cases.append(case)

        fuzz: list[dict[str, Any]] = []
        for item in _fuzz_inputs(random.Random(20240601)):
            entry: dict[str, Any] = {**item, "cleaned": None, "error": None}
            try:
                entry["cleaned"] = reference.preprocess_text(item["text"].strip().lower(), item["lang"])
            except Exception as exc:
                entry["error"] = _error(exc)
            fuzz.append(entry)

    meta = {"reference": "coqui-tts VoiceBpeTokenizer", "versions": _versions(), "vocab_sha256": sha256}
    GOLDEN.mkdir(parents=True, exist_ok=True)
    tokens_file = GOLDEN / "text_tokens.json"
    tokens_file.write_text(
        json.dumps({**meta, "cases": cases}, ensure_ascii=False, indent=0) + "\n", encoding="utf-8"
    )
    fuzz_file = GOLDEN / "text_normalize_fuzz.json"
    fuzz_file.write_text(
        json.dumps({**meta, "cases": fuzz}, ensure_ascii=False, indent=0) + "\n", encoding="utf-8"
    )
    failed = sum(1 for c in cases if c["error"])
    print(f"{tokens_file}: {len(cases)} sentences, reference raised on {failed}")
    print(f"{fuzz_file}: {len(fuzz)} snippets, reference raised on {sum(1 for c in fuzz if c['error'])}")


if __name__ == "__main__":
    main()
