"""A ko-KR extension's callers hear Korean: hold, updates, timeout, away, fallback and busy messages.

There is no voicemail or transfer prompt in the ARI app (a call the AI cannot help ends with a promise
of a call-back: the HITL timeout and away messages); the Asterisk side plays the recording notice and
the busy message in the extension's language, written by the ARI app from the texts checked here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aipbx.directory import load_directory
from ariapp.calls.limits import BUSY_MESSAGE
from ariapp.conversation.hitl import MESSAGES, HitlConfig
from ariapp.conversation.options import ConversationConfig
from ariapp.conversation.orchestrator import FALLBACK, FILLER

HANGUL = re.compile(r"[\uac00-\ud7a3]")
LATIN = re.compile(r"[A-Za-z]")
EXTENSIONS_FILE = Path(__file__).resolve().parents[2] / "asterisk" / "extensions.yaml"


def _korean(text: str) -> bool:
    """All Korean: Hangul, and no Latin letter once the owner's name placeholder is taken out."""
    return bool(HANGUL.search(text)) and not LATIN.search(text.replace("{owner}", ""))


@pytest.mark.parametrize("language, lang", [("ko-KR", "ko"), ("ko", "ko"), ("en-US", "en"), ("ja-JP", "en")])
def test_a_ko_kr_extension_speaks_the_korean_messages(language: str, lang: str) -> None:
    assert ConversationConfig(owner="이지영", owner_key="1002", language=language).lang == lang


def test_every_hold_message_has_a_korean_version() -> None:
    korean = HitlConfig().messages["ko"]
    assert (
        set(korean) == set(MESSAGES["en"]) == {"checking", "updates", "timeout", "away", "voicemail", "voicemail_end"}
    )
    for name, value in korean.items():
        texts = value if isinstance(value, tuple) else (value,)
        assert texts and all(_korean(text) for text in texts), name
    # the promise of a call-back names the owner, as in English
    assert "{owner}" in korean["timeout"] and "{owner}" in korean["away"]
    assert len(korean["updates"]) == len(MESSAGES["en"]["updates"])


def test_the_fallback_filler_and_busy_messages_are_korean() -> None:
    assert _korean(FALLBACK["ko"]) and "{owner}" in FALLBACK["ko"]
    assert _korean(FILLER["ko"])
    assert _korean(BUSY_MESSAGE["ko-KR"])


def test_the_recording_notice_of_ko_kr_extensions_is_korean() -> None:
    directory = load_directory(EXTENSIONS_FILE)
    assert _korean(directory.notice_text("ko-KR"))
