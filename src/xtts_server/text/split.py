"""Sentence splitting for long input, whole (`split_sentences`) or as text streams in (`IncrementalSplitter`).

Each piece is one sentence, or, for a sentence longer than the language's character limit (the
reference's `char_limits`: 250 for English, 82 for Chinese ...), a part of one cut at a clause mark
or a space, never inside a word. Numbers ("3.5") and abbreviations ("Dr.") stay whole; see
`sentence_rules` for the boundary rules.

"Certain", for the incremental splitter: a sentence is released once the text after its terminator
reaches the first character of the next sentence (after "Smith. " it waits for "H" of "How", because
"Smith. how" would not end a sentence), or at a line break, or when the pending sentence has grown
past the limit (then its first piece is cut as the whole-text split would cut it). So any way of
cutting a text into fragments gives exactly `split_sentences(text)`.

Cost: releasing a piece reads at most that piece plus one limit's worth of text and copies only
the piece, so `split_sentences` is linear in the text's length (4 MB of English: 1.5 s).
"""

from __future__ import annotations

import re

from xtts_server.text.languages import base_language, char_limit
from xtts_server.text.sentence_rules import Decision, abbreviations, decide, is_candidate, long_cut

_NON_SPACE = re.compile(r"\S")  # the same characters as str.isspace() / str.strip(), checked in tests


class IncrementalSplitter:
    """Splits text that arrives in fragments (LLM tokens) into sentences, each released when certain.

    >>> s = IncrementalSplitter("en")
    >>> s.push("Hel"), s.push("lo Dr."), s.push(" Smi"), s.push("th. How"), s.flush()
    ([], [], [], ['Hello Dr. Smith.'], ['How'])
    """

    def __init__(self, language: str, limit: int | None = None) -> None:
        self._lang = base_language(language)
        self._limit = limit if limit is not None else char_limit(language)
        if self._limit < 2:
            raise ValueError(f"limit must be at least 2 characters, not {self._limit}")
        self._abbrevs = abbreviations(self._lang)
        self._buffer = ""
        # Indexes into _buffer, so that releasing a sentence copies only that sentence, never the
        # rest of a long text: _start is where the pending text begins (the text before it has been
        # released), and no candidate before _scanned ends the pending sentence.
        self._start = 0
        self._scanned = 0

    @property
    def pending(self) -> str:
        """Text received but not yet released."""
        return self._buffer[self._start :]

    def push(self, fragment: str) -> list[str]:
        """Add a fragment; return the sentences (or over-long parts) that are now certain."""
        self._buffer += fragment
        return self._drain(final=False)

    def flush(self) -> list[str]:
        """End of input: return everything still pending, split the same way."""
        pieces = self._drain(final=True)
        self._buffer = ""
        self._start = self._scanned = 0
        return pieces

    def _drain(self, final: bool) -> list[str]:
        pieces: list[str] = []
        while (cut := self._next_cut(final)) is not None:
            piece = self._buffer[self._start : cut].strip()
            # Scan the next sentence afresh: a decision can depend on where its sentence starts.
            self._start = self._scanned = cut
            if piece:
                pieces.append(piece)
        # Drop the released text once per call (not once per sentence): linear in the text's length.
        self._buffer = self._buffer[self._start :]
        self._scanned -= self._start
        self._start = 0
        return pieces

    def _next_cut(self, final: bool) -> int | None:
        """Where the first pending piece ends (an index into _buffer), or None while that is uncertain."""
        buffer, limit = self._buffer, self._limit
        first = _NON_SPACE.search(buffer, self._start)
        self._start = first.start() if first is not None else len(buffer)  # leading whitespace goes
        start = self._start
        if start == len(buffer):
            return None
        # Once the scan passes the first non-space character at or after start + limit without
        # finding the sentence's end, the sentence is longer than the limit: no need to read further.
        beyond_match = _NON_SPACE.search(buffer, start + limit)
        beyond = beyond_match.start() if beyond_match is not None else len(buffer)
        end: int | None = None  # where the first sentence ends, if known
        certain = False
        index = max(self._scanned, start)
        while index < len(buffer) and index <= beyond:
            if is_candidate(buffer[index]):
                decision, candidate_end = decide(buffer, index, self._lang, self._abbrevs, start)
                if decision is Decision.BOUNDARY or (decision is Decision.UNDECIDED and final):
                    end, certain = candidate_end, True
                    break
                if decision is Decision.UNDECIDED:
                    end = candidate_end
                    break
                index = candidate_end  # CONTINUES: skip the whole terminator run
            else:
                index += 1
            self._scanned = index  # nothing before here can end the first sentence
        if end is None:
            if index > beyond:  # over-long: cut its first piece as soon as the deciding window is here
                return start + long_cut(buffer[start : start + limit + 1], limit)
            # Everything from start + limit on is whitespace, so what is here fits the limit.
            return len(buffer) if final else None
        if len(buffer[start:end].rstrip()) <= limit:
            return end if certain else None
        # The first sentence is longer than the limit (it ends past the window, so the window is here).
        return start + long_cut(buffer[start : start + limit + 1], limit)


def split_sentences(text: str, language: str, limit: int | None = None) -> list[str]:
    """`text` as a list of sentences, each at most `limit` characters (default: the language's limit).

    Empty or whitespace-only text gives []. Over-long sentences are cut at a clause mark or a space.
    """
    splitter = IncrementalSplitter(language, limit)
    return splitter.push(text) + splitter.flush()
