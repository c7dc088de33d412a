"""A voice that remembers what it has said: synthesized audio kept per text, least recently used out.

Theory of operation: an AI that answers only from its owner's knowledge says the same sentences
again and again (the opening hours, the price list, "one moment please", "I'm not sure about
that"), and synthesis is the costliest step of a reply after recognition (piper: ~0.4 s of CPU for
a 4 s sentence, on the one TTS thread every call shares). :class:`CachedTTS` stands in for any
``TextToSpeech``: a text spoken before is handed out at once, chunk for chunk as the voice made it;
a new one streams from the voice as before and is kept once it has been synthesized *whole* (a
reply cut off by a barge-in keeps nothing). The budget is in bytes of audio; the least recently
used texts leave first. Two calls asking for the same new text at once both synthesize it (the
first to finish stores it): rare, and never a wait behind another call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any, Final

from aipbx.providers.base import Pcm, collect_audio

__all__ = ["CachedTTS"]

#: Longer texts are not kept: they are rarely said twice word for word.
MAX_TEXT_CHARS: Final = 600


class CachedTTS:
    """``TextToSpeech`` with a bounded memory of synthesized texts (see the module docstring).

    Args:
        inner: The voice.
        max_bytes: Budget for the kept audio (0 keeps nothing).
    """

    def __init__(self, inner: Any, max_bytes: int) -> None:
        self.inner = inner
        self.max_bytes = max_bytes
        self.sample_rate: int = inner.sample_rate
        self._kept: OrderedDict[str, tuple[Pcm, ...]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # the app is one event loop; warm-ups may come from threads
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"CachedTTS({self.inner!r})"

    @property
    def kept_bytes(self) -> int:
        return self._bytes

    def _get(self, text: str) -> tuple[Pcm, ...] | None:
        with self._lock:
            chunks = self._kept.get(text)
            if chunks is not None:
                self._kept.move_to_end(text)
            return chunks

    def _put(self, text: str, chunks: tuple[Pcm, ...]) -> None:
        size = sum(c.nbytes for c in chunks)
        if size > self.max_bytes or len(text) > MAX_TEXT_CHARS:
            return
        with self._lock:
            old = self._kept.pop(text, None)
            if old is not None:
                self._bytes -= sum(c.nbytes for c in old)
            self._kept[text] = chunks
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._kept.popitem(last=False)
                self._bytes -= sum(c.nbytes for c in dropped)

    async def synthesize(self, text: str) -> AsyncIterator[Pcm]:
        """The voice's chunks for ``text``: from memory when said before, else as the voice makes them."""
        kept = self._get(text) if self.max_bytes else None
        if kept is not None:
            self.hits += 1
            for chunk in kept:
                yield chunk
            return
        self.misses += 1
        made: list[Pcm] = []
        async for chunk in self.inner.synthesize(text):
            made.append(chunk)
            yield chunk
        if self.max_bytes and made:
            # read-only: a consumer that changes a chunk in place cannot change what the next caller hears
            for chunk in made:
                chunk.flags.writeable = False
            self._put(text, tuple(made))

    async def synthesize_all(self, text: str) -> Pcm:
        return await collect_audio(self.synthesize(text))

    def __getattr__(self, name: str) -> Any:  # warmup, voice names: the voice's own
        return getattr(self.inner, name)
