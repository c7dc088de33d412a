"""What a scripted phone says: speech synthesised with the offline voice, at the phone's rate.

Used by the integration tests, the demo and the benchmarks (one voice per process, loaded once).
"""

from __future__ import annotations

import functools
import re

import numpy as np

# A person says "Doctor Park" in one breath; the voice reads "Dr." as a sentence's end and pauses
# 0.3 s, which a listener (and the PBX's end of turn) takes for the end of the question.
_TITLE = re.compile(r"\b(Dr|Mr|Mrs|Ms)\.(?=\s)")
_TITLE_WORDS = {"Dr": "Doctor", "Mr": "Mister", "Mrs": "Missus", "Ms": "Miz"}


@functools.lru_cache(maxsize=1)
def _tts():
    from aipbx.providers.local import PiperTTS

    return PiperTTS()


async def speech(text: str, rate: int = 8000) -> np.ndarray:
    """``text`` spoken by the offline English voice, int16 mono at ``rate``."""
    from aipbx.audio.resample import resample

    tts = _tts()
    said = _TITLE.sub(lambda m: _TITLE_WORDS[m.group(1)], text)
    return resample(await tts.synthesize_all(said), tts.sample_rate, rate)
