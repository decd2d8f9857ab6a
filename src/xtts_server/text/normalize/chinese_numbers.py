"""Chinese numbers, dates, money, phone numbers, fractions and percentages in characters.

Behaves as the reference's `zh_num2words.TextNorm()` with default options (coqui-tts, after
chn_text_norm by Zhiyang Zhou and Jiayu Du): the rewriters run in a fixed order over the whole text,
each finding its matches first and then replacing the *first occurrence* of each matched string,
which is not always the place it was found ("12个" after "1234" rewrites the "12" inside "1234").
Those quirks are kept because the model was trained on text produced this way. At the end every
Chinese or ASCII punctuation mark becomes an ASCII comma.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass

_DIGITS = "零一二三四五六七八九"
# Beyond this many digits a number is read digit by digit (the largest unit, 载, is 10^44).
_LONGEST_WITH_UNITS = 1000
_LIANG = "两"  # "two" before a unit of hundred or more: 两千, not 二千
_POINT = "点"
# Units and their powers of ten, in the "mid" numbering system (万 = 10^4, 亿 = 10^8, 兆 = 10^12 ...).
_UNITS: tuple[tuple[str, int], ...] = (
    ("十", 1),
    ("百", 2),
    ("千", 3),
    ("万", 4),
    ("亿", 8),
    ("兆", 12),
    ("京", 16),
    ("垓", 20),
    ("秭", 24),
    ("穰", 28),
    ("沟", 32),
    ("涧", 36),
    ("正", 40),
    ("载", 44),
)


@dataclass(frozen=True)
class _Digit:
    value: int


@dataclass(frozen=True)
class _Unit:
    char: str
    power: int


class _Point:
    pass


_Symbol = _Digit | _Unit | _Point


def _with_units(number: str) -> list[_Symbol]:
    """Digits of an integer string spelled with units; leading zeros speak as one 零 where they matter."""
    significant = number.lstrip("0")
    if not significant:
        return []
    if len(significant) == 1:
        if len(number) != len(significant):
            return [_Digit(0), _Digit(int(significant))]
        return [_Digit(int(significant))]
    char, power = next((c, p) for c, p in reversed(_UNITS) if p < len(significant))
    # The head is cut from the string with its zeros; the tail from the significant part.
    return [*_with_units(number[:-power]), _Unit(char, power), *_with_units(significant[-power:])]


def _use_liang(symbols: list[_Symbol]) -> None:
    for i, symbol in enumerate(symbols):
        if not (isinstance(symbol, _Digit) and symbol.value == 2):
            continue
        following = symbols[i + 1] if i + 1 < len(symbols) else None
        preceding = symbols[i - 1] if i > 0 else None
        if (
            isinstance(following, _Unit)
            and following.power != 1
            and (preceding is None or (isinstance(preceding, _Unit) and preceding.power != 1))
        ):
            symbols[i] = _Digit(-2)  # marks 两


def _spell(symbol: _Symbol) -> str:
    if isinstance(symbol, _Unit):
        return symbol.char
    if isinstance(symbol, _Point):
        return _POINT
    return _LIANG if symbol.value == -2 else _DIGITS[symbol.value]


def number_to_chinese(number: str, *, use_units: bool = True, use_liang: bool = True) -> str:
    """ "1234.5" -> "一千二百三十四点五"; without units, digit by digit: "2024" -> "二零二四".

    Raises ValueError for more than one decimal point, as the reference does (its patterns never pass one).
    """
    parts = number.split(".")
    if len(parts) > 2:
        raise ValueError(f"more than one decimal point in {number!r}")
    whole, fraction = parts[0], (parts[1] if len(parts) == 2 else "")
    # A single digit is never given units; with use_units off, every digit is read alone.
    if len(whole) > _LONGEST_WITH_UNITS:
        use_units = False  # the reference recurses too deep here and raises; we read the digits
    symbols: list[_Symbol] = (
        _with_units(whole) if use_units and len(whole) > 1 else [_Digit(int(c)) for c in whole]
    )
    if fraction:
        symbols += [_Point(), *(_Digit(int(c)) for c in fraction)]
    if use_liang:
        _use_liang(symbols)
    result = "".join(_spell(s) for s in symbols)
    if result.startswith(_POINT):
        return _DIGITS[0] + result
    # 10..19 drop their leading 一: 十五, not 一十五.
    if len(result) >= 2 and result[1] == "十" and result[0] == "一":
        result = result[1:]
    return result


def _cardinal(number: str) -> str:
    return number_to_chinese(number)


def _digits(number: str) -> str:
    return number_to_chinese(number, use_units=False, use_liang=False)


# --- the rewriters, in the order they run -------------------------------------------------------

_CURRENCY_UNITS = "((亿|千万|百万|万|千|百)|(亿|千万|百万|万|千|百|)元|(亿|千万|百万|万|千|百|)块|角|毛|分)"
_QUANTIFIERS = (
    "(匹|张|座|回|场|尾|条|个|首|阙|阵|网|炮|顶|丘|棵|只|支|袭|辆|挑|担|颗|壳|窠|曲|墙|群|腔|"
    "砣|座|客|贯|扎|捆|刀|令|打|手|罗|坡|山|岭|江|溪|钟|队|单|双|对|出|口|头|脚|板|跳|枝|件|贴|"
    "针|线|管|名|位|身|堂|课|本|页|家|户|层|丝|毫|厘|分|钱|两|斤|担|铢|石|钧|锱|忽|(千|毫|微)克|"
    "毫|厘|分|寸|尺|丈|里|寻|常|铺|程|(千|分|厘|毫|微)米|撮|勺|合|升|斗|石|盘|碗|碟|叠|桶|笼|盆|"
    "盒|杯|钟|斛|锅|簋|篮|盘|桶|罐|瓶|壶|卮|盏|箩|箱|煲|啖|袋|钵|年|月|日|季|刻|时|周|天|秒|分|旬|"
    "纪|岁|世|更|夜|春|夏|秋|冬|代|伏|辈|丸|泡|粒|颗|幢|堆|条|根|支|道|面|片|张|颗|块)"
)
_DATE = re.compile(r"\D+((([089]\d|(19|20)\d{2})年)?(\d{1,2}月(\d{1,2}[日号])?)?)")
_MONEY = re.compile(r"\D+((\d+(\.\d+)?)[多余几]?" + _CURRENCY_UNITS + r"(\d" + _CURRENCY_UNITS + r"?)?)")
_MOBILE = re.compile(r"\D((\+?86 ?)?1([38]\d|5[0-35-9]|7[678]|9[89])\d{8})\D")
_LANDLINE = re.compile(r"\D((0(10|2[1-3]|[3-9]\d{2})-?)?[1-9]\d{6,7})\D")
_FRACTION = re.compile(r"(\d+/\d+)")
_PERCENT = re.compile(r"(\d+(\.\d+)?%)")
_COUNTED = re.compile(r"(\d+(\.\d+)?)[多余几]?" + _QUANTIFIERS)
_LONG_DIGITS = re.compile(r"(\d{4,32})")
_NUMBER = re.compile(r"(\d+(\.\d+)?)")
_LATIN_2_LATIN = re.compile(r"(([a-zA-Z]+)二([a-zA-Z]+))")
_DECIMAL_IN_MONEY = re.compile(r"(\d+(\.\d+)?)")

_CN_PUNCTUATION = (
    "！？｡。"
    "＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃《》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏·〈〉-"
)
_PUNCTUATION = _CN_PUNCTUATION + string.punctuation
_TO_COMMAS = str.maketrans(_PUNCTUATION, "," * len(_PUNCTUATION))


def _date(date: str) -> str:
    year, sep, rest = date.partition("年")
    if sep:
        year = _digits(year) + "年"
    else:
        year, rest = "", date
    if not rest:
        return year
    month, sep, day = rest.partition("月")
    if sep:
        month = _cardinal(month) + "月"
    else:  # unreachable with the date pattern, kept for the reference's fallback shape
        month, day = "", date
    if day:
        day = _cardinal(day[:-1]) + day[-1]
    return year + month + day


def _money(money: str) -> str:
    for number, _ in _DECIMAL_IN_MONEY.findall(money):
        money = money.replace(number, _cardinal(number))  # every occurrence, as the reference does
    return money


def _phone(phone: str, *, landline: bool) -> str:
    parts = phone.split("-") if landline else phone.strip("+").split()
    return "".join(_digits(part) for part in parts)


def _fraction(fraction: str) -> str:
    numerator, denominator = fraction.split("/")
    return _cardinal(denominator) + "分之" + _cardinal(numerator)


def _replace_first_occurrences(text: str, found: list[str], rewrite: Callable[[str], str]) -> str:
    for item in found:
        text = text.replace(item, rewrite(item), 1)
    return text


def normalize_chinese_numbers(text: str) -> str:
    """Every number-like span of Chinese text in characters, then all punctuation as ASCII commas."""
    text = "^" + text + "$"  # sentinels: the patterns need a non-digit on both sides
    text = _replace_first_occurrences(text, [m[0] for m in _DATE.findall(text)], _date)
    text = _replace_first_occurrences(text, [m[0] for m in _MONEY.findall(text)], _money)
    text = _replace_first_occurrences(
        text, [m[0] for m in _MOBILE.findall(text)], lambda s: _phone(s, landline=False)
    )
    text = _replace_first_occurrences(
        text, [m[0] for m in _LANDLINE.findall(text)], lambda s: _phone(s, landline=True)
    )
    text = _replace_first_occurrences(text, _FRACTION.findall(text), _fraction)
    text = text.replace("％", "%")
    text = _replace_first_occurrences(
        text, [m[0] for m in _PERCENT.findall(text)], lambda s: "百分之" + _cardinal(s.strip().strip("%"))
    )
    text = _replace_first_occurrences(text, [m[0] for m in _COUNTED.findall(text)], _cardinal)
    text = _replace_first_occurrences(text, _LONG_DIGITS.findall(text), _digits)
    text = _replace_first_occurrences(text, [m[0] for m in _NUMBER.findall(text)], _cardinal)
    for whole, left, right in _LATIN_2_LATIN.findall(text):  # restore P2P, B2B, O2O ...
        text = text.replace(whole, left + "2" + right, 1)
    # Like the reference, this also strips "^" and "$" that the text itself began or ended with.
    text = text.lstrip("^").rstrip("$")
    return text.translate(_TO_COMMAS)
