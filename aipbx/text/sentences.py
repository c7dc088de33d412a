"""Cut a stream of LLM text deltas into pieces that can be spoken as soon as they are complete.

The first piece of a reply may be a clause (cut at a comma once it is long enough), so speech can
start before the model has finished its first sentence; later pieces are whole sentences, which
synthesise more naturally. Korean and English punctuation are both understood.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?。？！][\"')\]]*(\s+|$)")
_ABBREVIATION = re.compile(r"(?:^|[\s(])(?:a\.m|p\.m|e\.g|i\.e|mr|ms|mrs|dr|no|st|vs)\.$", re.IGNORECASE)
_CLAUSE_END = re.compile(r"[,;:，、]\s+")


class SentenceSplitter:
    def __init__(self, first_clause_min_chars: int = 12, max_chars: int = 220) -> None:
        self._buffer = ""
        self._first = True
        self._first_clause_min = first_clause_min_chars
        self._max = max_chars

    def push(self, delta: str) -> list[str]:
        """Add text; return the pieces that became complete."""
        self._buffer += delta
        pieces = []
        while True:
            piece = self._next_piece()
            if piece is None:
                break
            pieces.append(piece)
        return pieces

    def flush(self) -> list[str]:
        """End of the reply: whatever is left is the last piece."""
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []

    def _next_piece(self) -> str | None:
        text = self._buffer
        match = _sentence_end(text)
        if match is None and self._first:
            clause = _CLAUSE_END.search(text)
            if clause and clause.start() >= self._first_clause_min:
                match = clause.end()
        if match is None and len(text) > self._max:
            # A run-on without punctuation: cut at the last space before the limit.
            space = text.rfind(" ", 0, self._max)
            match = space + 1 if space > 0 else self._max
        if match is None:
            return None
        piece, self._buffer = text[:match].strip(), text[match:]
        if not piece:
            return None
        self._first = False
        return piece


def _sentence_end(text: str) -> int | None:
    for found in _SENTENCE_END.finditer(text):
        end = found.end()
        # "10.5" or "a.m." followed directly by more text is not a sentence end; a real end is
        # followed by whitespace (and we only cut once that whitespace arrived) .
        if end < len(text) or text.endswith((" ", "\n")):
            if found.group(0).strip() in (".",) and _is_abbreviation(text[: found.start() + 1]):
                continue
            return end
    return None


def _is_abbreviation(text: str) -> bool:
    """ "10 a.m." or "Dr." ends with a period that ends no sentence; "rooms." does."""
    return _ABBREVIATION.search(text) is not None


def split_sentences(text: str) -> list[str]:
    """All pieces of a complete text (for greetings and operator answers)."""
    splitter = SentenceSplitter(first_clause_min_chars=10_000)
    return splitter.push(text + " ") + splitter.flush()
