"""A small, deterministic byte-pair-encoding merge learner (pure Python).

Used to build the test vocabulary. The `tokenizers` trainer would do, but its output can change
between library versions; this one depends only on its input and on code-point order, so the
vocabulary is the same bytes on every platform and every run.

Rule: repeatedly merge the most frequent adjacent pair of symbols inside words; ties go to the pair
that sorts first as (left, right) strings. Counts are kept up to date incrementally.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable

Pair = tuple[str, str]


def learn_merges(word_counts: Iterable[tuple[str, int]], max_merges: int) -> list[Pair]:
    """Up to `max_merges` merges, most useful first, from (word, count) pairs.

    Stops early when no pair occurs any more (every word is a single symbol).
    """
    words: list[list[str]] = []
    freqs: list[int] = []
    for word, count in sorted(word_counts):
        if len(word) > 1 and count > 0:
            words.append(list(word))
            freqs.append(count)

    pair_counts: Counter[Pair] = Counter()
    pair_words: defaultdict[Pair, set[int]] = defaultdict(set)
    for index, symbols in enumerate(words):
        for pair in itertools.pairwise(symbols):
            pair_counts[pair] += freqs[index]
            pair_words[pair].add(index)

    heap: list[tuple[int, str, str]] = [(-count, a, b) for (a, b), count in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[Pair] = []
    while heap and len(merges) < max_merges:
        negative_count, a, b = heapq.heappop(heap)
        best = (a, b)
        if pair_counts.get(best, 0) != -negative_count or negative_count == 0:
            continue  # a stale entry: the count changed since it was pushed
        merges.append(best)
        merged = a + b
        changed: set[Pair] = set()
        for index in sorted(pair_words.pop(best, ())):
            symbols = words[index]
            freq = freqs[index]
            for pair in itertools.pairwise(symbols):
                pair_counts[pair] -= freq
                changed.add(pair)
            rebuilt: list[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
                    rebuilt.append(merged)
                    i += 2
                else:
                    rebuilt.append(symbols[i])
                    i += 1
            words[index] = rebuilt
            for pair in itertools.pairwise(rebuilt):
                pair_counts[pair] += freq
                pair_words[pair].add(index)
                changed.add(pair)
        del pair_counts[best]
        changed.discard(best)
        for pair in sorted(changed):
            count = pair_counts[pair]
            if count > 0:
                heapq.heappush(heap, (-count, pair[0], pair[1]))
            else:
                del pair_counts[pair]
                pair_words.pop(pair, None)
    return merges
