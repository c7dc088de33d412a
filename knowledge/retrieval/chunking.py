"""Sentence-aware chunking of Korean and English text.

Theory of operation: the text is cut into words (runs of non-blanks; a word
longer than a whole chunk is cut into pieces of ``size`` characters). A word
*ends a sentence* when it ends with terminal punctuation (``. ! ? 。 ！ ？ …``,
optionally followed by closing quotes or brackets), when a line break follows
it, or when it ends with a Korean sentence-final ending (``-니다``, ``-요``,
``-죠``...) and a blank follows: speech transcripts often come without
punctuation.

Chunks are packed greedily: a chunk grows word by word while it fits in
``size`` characters, then it is cut back to its last sentence end, provided
that keeps it at least half full (otherwise it is cut at a word boundary).
The next chunk starts up to ``overlap`` characters before the previous one
ended, at the earliest sentence start in that window if there is one, else at
the earliest word start, so a fact split across chunks is still whole in one
of them. Sizes count characters (a Hangul syllable is one), the unit the
design's ``chunk_size=500, chunk_overlap=50`` uses.

Every chunk is an exact slice of the input (``chunk_spans`` gives the
offsets), so nothing is rewritten and citations can point into the source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["chunk_spans", "chunk_text"]

_TERMINAL: Final = re.compile(r"[.!?。！？…]+[\"'”’»)\]」』]*$")
# Korean sentence-final endings that close an utterance when no punctuation follows (transcripts).
_KO_FINAL: Final = re.compile(
    r"(니다|니까|세요|어요|아요|여요|에요|예요|해요|네요|군요|래요|까요|지요|게요|데요|나요|걸요|고요|죠)$"
)
_MIN_FILL: Final = 0.5


@dataclass(frozen=True, slots=True)
class _Word:
    start: int
    end: int
    ends_sentence: bool


def _words(text: str, size: int) -> list[_Word]:
    matches = list(re.finditer(r"\S+", text))
    words: list[_Word] = []
    for index, match in enumerate(matches):
        start, end = match.span()
        following = text[end : matches[index + 1].start()] if index + 1 < len(matches) else "\n"
        token = match.group()
        ends = (
            bool(_TERMINAL.search(token))
            or "\n" in following
            or (bool(_KO_FINAL.search(token)) and index + 1 < len(matches))
        )
        for piece in range(start, end, size):  # a word longer than a chunk is cut into pieces
            last = piece + size >= end
            words.append(_Word(piece, min(piece + size, end), ends and last))
    return words


def chunk_spans(text: str, size: int = 500, overlap: int = 50) -> list[tuple[int, int]]:
    """``(start, end)`` offsets of the chunks of ``text``; see :func:`chunk_text`.

    Raises:
        ValueError: ``size < 1`` or ``overlap`` not in ``[0, size)``.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be in [0, size), got {overlap} for size {size}")
    words = _words(text, size)
    spans: list[tuple[int, int]] = []
    first = 0
    while first < len(words):
        start = words[first].start
        last = first
        while last + 1 < len(words) and words[last + 1].end - start <= size:
            last += 1
        if last + 1 < len(words):
            for boundary in range(last, first - 1, -1):
                if words[boundary].ends_sentence and words[boundary].end - start >= size * _MIN_FILL:
                    last = boundary
                    break
        spans.append((start, words[last].end))
        if last + 1 == len(words):
            break
        first = _next_start(words, first, last, size, overlap)
    return spans


def _next_start(words: list[_Word], first: int, last: int, size: int, overlap: int) -> int:
    """Index of the word that starts the chunk after ``words[first..last]``."""
    end, following = words[last].end, words[last + 1].end
    candidates = [
        k for k in range(first + 1, last + 1) if end - words[k].start <= overlap and following - words[k].start <= size
    ]
    sentence_starts = [k for k in candidates if words[k - 1].ends_sentence]
    return (sentence_starts or candidates or [last + 1])[0]


def chunk_text(text: str, size: int = 500, overlap: int = 50) -> list[str]:
    """Split ``text`` into chunks of at most ``size`` characters, cut at sentence ends.

    Consecutive chunks share at most ``overlap`` characters (whole sentences
    when they fit, else whole words). Blank input gives no chunks.

    Args:
        text: Korean, English or mixed text.
        size: Maximum chunk length in characters.
        overlap: Maximum number of characters a chunk repeats from the previous one.

    Raises:
        ValueError: ``size < 1`` or ``overlap`` not in ``[0, size)``.
    """
    return [text[start:end] for start, end in chunk_spans(text, size, overlap)]
