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
"""

from __future__ import annotations

from xtts_server.text.languages import base_language, char_limit
from xtts_server.text.sentence_rules import Decision, abbreviations, decide, is_candidate, long_cut


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
        self._scanned = 0  # candidates before this index are known not to end a sentence

    @property
    def pending(self) -> str:
        """Text received but not yet released."""
        return self._buffer

    def push(self, fragment: str) -> list[str]:
        """Add a fragment; return the sentences (or over-long parts) that are now certain."""
        self._buffer += fragment
        return self._drain(final=False)

    def flush(self) -> list[str]:
        """End of input: return everything still pending, split the same way."""
        pieces = self._drain(final=True)
        self._buffer = ""
        self._scanned = 0
        return pieces

    def _drain(self, final: bool) -> list[str]:
        pieces: list[str] = []
        while True:
            cut = self._next_cut(final)
            if cut is None:
                return pieces
            piece = self._buffer[:cut].strip()
            self._buffer = self._buffer[cut:].lstrip()
            self._scanned = 0
            if piece:
                pieces.append(piece)

    def _next_cut(self, final: bool) -> int | None:
        text = self._buffer.lstrip()
        if len(text) != len(self._buffer):
            self._buffer = text
            self._scanned = 0
        if not text:
            return None
        end: int | None = None  # where the first sentence ends, if known
        certain = False
        index = self._scanned
        while index < len(text):
            if is_candidate(text[index]):
                decision, candidate_end = decide(text, index, self._lang, self._abbrevs)
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
        sentence_length = len(text[:end].rstrip()) if end is not None else len(text.rstrip())
        if sentence_length <= self._limit:
            if certain:
                return end
            if end is None and final:
                return len(text)
            return None
        # The first sentence is longer than the limit (or may be): cut its first piece once the
        # window that decides the cut has arrived.
        if len(text) > self._limit or final:
            return long_cut(text, self._limit) if len(text) > self._limit else len(text)
        return None


def split_sentences(text: str, language: str, limit: int | None = None) -> list[str]:
    """`text` as a list of sentences, each at most `limit` characters (default: the language's limit).

    Empty or whitespace-only text gives []. Over-long sentences are cut at a clause mark or a space.
    """
    splitter = IncrementalSplitter(language, limit)
    return splitter.push(text) + splitter.flush()
