"""Per-language word tables of the reference front end: abbreviations and symbols.

The model was trained on text rewritten with exactly these tables (coqui-tts
`TTS/tts/layers/xtts/tokenizer.py`), so they are kept word for word, odd entries included
(e.g. Russian "@" -> "собака", Polish "m." -> "pan"). Order matters: entries run top to bottom.
"""

from __future__ import annotations

import re

# (abbreviation without its dot, expansion). Matched case-insensitively at a word start, dot included.
ABBREVIATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (
        ("mrs", "misess"),
        ("mr", "mister"),
        ("dr", "doctor"),
        ("st", "saint"),
        ("co", "company"),
        ("jr", "junior"),
        ("maj", "major"),
        ("gen", "general"),
        ("drs", "doctors"),
        ("rev", "reverend"),
        ("lt", "lieutenant"),
        ("hon", "honorable"),
        ("sgt", "sergeant"),
        ("capt", "captain"),
        ("esq", "esquire"),
        ("ltd", "limited"),
        ("col", "colonel"),
        ("ft", "fort"),
    ),
    "es": (
        ("sra", "señora"),
        ("sr", "señor"),
        ("dr", "doctor"),
        ("dra", "doctora"),
        ("st", "santo"),
        ("co", "compañía"),
        ("jr", "junior"),
        ("ltd", "limitada"),
    ),
    "fr": (
        ("mme", "madame"),
        ("mr", "monsieur"),
        ("dr", "docteur"),
        ("st", "saint"),
        ("co", "compagnie"),
        ("jr", "junior"),
        ("ltd", "limitée"),
    ),
    "de": (
        ("fr", "frau"),
        ("dr", "doktor"),
        ("st", "sankt"),
        ("co", "firma"),
        ("jr", "junior"),
    ),
    "pt": (
        ("sra", "senhora"),
        ("sr", "senhor"),
        ("dr", "doutor"),
        ("dra", "doutora"),
        ("st", "santo"),
        ("co", "companhia"),
        ("jr", "júnior"),
        ("ltd", "limitada"),
    ),
    "it": (
        ("sig", "signore"),
        ("dr", "dottore"),
        ("st", "santo"),
        ("co", "compagnia"),
        ("jr", "junior"),
        ("ltd", "limitata"),
    ),
    "pl": (
        ("p", "pani"),
        ("m", "pan"),
        ("dr", "doktor"),
        ("sw", "święty"),
        ("jr", "junior"),
    ),
    "cs": (
        ("dr", "doktor"),
        ("ing", "inženýr"),
        ("p", "pan"),
    ),
    "nl": (
        ("dhr", "de heer"),
        ("mevr", "mevrouw"),
        ("dr", "dokter"),
        ("jhr", "jonkheer"),
    ),
    "tr": (
        ("b", "bay"),
        ("byk", "büyük"),
        ("dr", "doktor"),
    ),
    "hu": (
        ("dr", "doktor"),
        ("b", "bácsi"),
        ("nőv", "nővér"),
    ),
    # Russian abbreviations carry a hyphen instead of a dot, and are matched as whole words.
    "ru": (
        ("г-жа", "госпожа"),
        ("г-н", "господин"),
        ("д-р", "доктор"),
    ),
    "ar": (),
    "zh": (),
    "ko": (),
    "hi": (),
}

# Symbol -> spoken word, per language, applied in this order (&, @, %, #, $, £, °).
SYMBOLS: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (
        ("&", "and"),
        ("@", "at"),
        ("%", "percent"),
        ("#", "hash"),
        ("$", "dollar"),
        ("£", "pound"),
        ("°", "degree"),
    ),
    "es": (
        ("&", "y"),
        ("@", "arroba"),
        ("%", "por ciento"),
        ("#", "numeral"),
        ("$", "dolar"),
        ("£", "libra"),
        ("°", "grados"),
    ),
    "fr": (
        ("&", "et"),
        ("@", "arobase"),
        ("%", "pour cent"),
        ("#", "dièse"),
        ("$", "dollar"),
        ("£", "livre"),
        ("°", "degrés"),
    ),
    "de": (
        ("&", "und"),
        ("@", "at"),
        ("%", "prozent"),
        ("#", "raute"),
        ("$", "dollar"),
        ("£", "pfund"),
        ("°", "grad"),
    ),
    "pt": (
        ("&", "e"),
        ("@", "arroba"),
        ("%", "por cento"),
        ("#", "cardinal"),
        ("$", "dólar"),
        ("£", "libra"),
        ("°", "graus"),
    ),
    "it": (
        ("&", "e"),
        ("@", "chiocciola"),
        ("%", "per cento"),
        ("#", "cancelletto"),
        ("$", "dollaro"),
        ("£", "sterlina"),
        ("°", "gradi"),
    ),
    "pl": (
        ("&", "i"),
        ("@", "małpa"),
        ("%", "procent"),
        ("#", "krzyżyk"),
        ("$", "dolar"),
        ("£", "funt"),
        ("°", "stopnie"),
    ),
    "ar": (
        ("&", "و"),
        ("@", "على"),
        ("%", "في المئة"),
        ("#", "رقم"),
        ("$", "دولار"),
        ("£", "جنيه"),
        ("°", "درجة"),
    ),
    "zh": (("&", "和"), ("@", "在"), ("%", "百分之"), ("#", "号"), ("$", "美元"), ("£", "英镑"), ("°", "度")),
    "cs": (
        ("&", "a"),
        ("@", "na"),
        ("%", "procento"),
        ("#", "křížek"),
        ("$", "dolar"),
        ("£", "libra"),
        ("°", "stupně"),
    ),
    "ru": (
        ("&", "и"),
        ("@", "собака"),
        ("%", "процентов"),
        ("#", "номер"),
        ("$", "доллар"),
        ("£", "фунт"),
        ("°", "градус"),
    ),
    "nl": (
        ("&", "en"),
        ("@", "bij"),
        ("%", "procent"),
        ("#", "hekje"),
        ("$", "dollar"),
        ("£", "pond"),
        ("°", "graden"),
    ),
    "tr": (
        ("&", "ve"),
        ("@", "at"),
        ("%", "yüzde"),
        ("#", "diyez"),
        ("$", "dolar"),
        ("£", "sterlin"),
        ("°", "derece"),
    ),
    "hu": (
        ("&", "és"),
        ("@", "kukac"),
        ("%", "százalék"),
        ("#", "kettőskereszt"),
        ("$", "dollár"),
        ("£", "font"),
        ("°", "fok"),
    ),
    "ko": (
        ("&", "그리고"),
        ("@", "에"),
        ("%", "퍼센트"),
        ("#", "번호"),
        ("$", "달러"),
        ("£", "파운드"),
        ("°", "도"),
    ),
    "hi": (
        ("&", "और"),
        ("@", "ऐट दी रेट"),
        ("%", "प्रतिशत"),
        ("#", "हैश"),
        ("$", "डॉलर"),
        ("£", "पाउंड"),
        ("°", "डिग्री"),
    ),
}


def _abbreviation_pattern(lang: str, abbreviation: str) -> re.Pattern[str]:
    # Russian entries end in a letter and need a closing word boundary; the others end in a literal dot.
    tail = r"\b" if lang == "ru" else r"\."
    return re.compile(rf"\b{abbreviation}{tail}", re.IGNORECASE)


ABBREVIATION_PATTERNS: dict[str, tuple[tuple[re.Pattern[str], str], ...]] = {
    lang: tuple((_abbreviation_pattern(lang, abbr), word) for abbr, word in pairs)
    for lang, pairs in ABBREVIATIONS.items()
}


def expand_abbreviations(text: str, lang: str) -> str:
    """Replace the language's abbreviations ("dr." -> "doctor"), first table entry first."""
    for pattern, word in ABBREVIATION_PATTERNS[lang]:
        text = pattern.sub(word, text)
    return text


def expand_symbols(text: str, lang: str) -> str:
    """Replace &, @, %, #, $, £, ° by the language's word, padded with spaces, and trim the ends.

    After each symbol, a double space is folded once (a single left-to-right pass, as the reference
    does), so runs of three or more spaces can survive until the final whitespace collapse.
    """
    for symbol, word in SYMBOLS[lang]:
        text = text.replace(symbol, f" {word} ")
        text = text.replace("  ", " ")
    return text.strip()
