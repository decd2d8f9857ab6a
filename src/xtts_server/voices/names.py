"""Voice names: what a caller may call a voice, when two names are the same voice, and the file it lives in.

The rule: 1 to 64 characters; letters and digits of any script, combining marks, and the four
characters space, `_`, `-`, `.`; no leading or trailing space, no leading `.`, no `..`.
So no `/`, `\\`, NUL, control or formatting characters, and no emoji.

Names are case-insensitive and case-preserving: "Alice", "alice" and "ＡＬＩＣＥ" (full-width) are the
same voice, shown as first written. The comparison key is the NFKC case fold of the name.

A voice's file name is never the name itself: it is an ASCII slug (for a person browsing the folder)
plus a hash of the key (for uniqueness), so no name can reach outside the voices directory and two
names that are the same voice always land in the same file.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from xtts_server.errors import InvalidRequest

MAX_NAME_LENGTH = 64
NAME_RULE = (
    f"a voice name is 1 to {MAX_NAME_LENGTH} characters: letters, digits, spaces and _ - . "
    "(no leading or trailing space, no leading '.', no '..'); names are case-insensitive"
)
_PUNCTUATION = frozenset(" _-.")
_ALLOWED_CATEGORIES = ("L", "M", "Nd")  # letters, combining marks (needed by many scripts), decimal digits
_SLUG_LENGTH = 24
_HASH_HEX = 32  # 128 bits of SHA-256: collisions between distinct names are not a practical concern


def _invalid(name: object, why: str) -> InvalidRequest:
    shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
    return InvalidRequest(f"invalid voice name {shown}: {why}; {NAME_RULE}")


def validate_name(name: object) -> str:
    """The name as it will be stored (NFC); raises InvalidRequest saying what breaks the rule."""
    if not isinstance(name, str):
        raise InvalidRequest(f"a voice name must be a string, got {type(name).__name__}; {NAME_RULE}")
    name = unicodedata.normalize("NFC", name)
    if not name:
        raise _invalid(name, "it is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise _invalid(name, f"it is {len(name)} characters long")
    for char in name:
        if char not in _PUNCTUATION and not unicodedata.category(char).startswith(_ALLOWED_CATEGORIES):
            if char in "/\\":
                why = "it contains a path separator"
            elif unicodedata.category(char)[0] in "CZ":
                why = f"it contains the control or separator character U+{ord(char):04X}"
            else:
                why = f"it contains {char!r}"
            raise _invalid(name, why)
    if name[0] == " " or name[-1] == " ":
        raise _invalid(name, "it starts or ends with a space")
    if name[0] == ".":
        raise _invalid(name, "it starts with '.'")
    if ".." in name:
        raise _invalid(name, "it contains '..'")
    if not any(unicodedata.category(c).startswith(("L", "Nd")) for c in name):
        raise _invalid(name, "it has no letter or digit")
    return name


def name_key(name: str) -> str:
    """The identity of a name: equal keys are the same voice. Total (never raises) so that lookups of
    built-in names outside the rule and of garbage both work."""
    # NFKC after the case fold too: folding can produce sequences that NFKC composes differently.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def file_stem(key: str) -> str:
    """The file name (without suffix) for a key: `[a-z0-9-]` slug + `_` + hash. Safe on every file system."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_HEX]
    ascii_key = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_key.lower()).strip("-")[:_SLUG_LENGTH].strip("-")
    return f"{slug or 'voice'}_{digest}"
