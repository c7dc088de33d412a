"""Moved to :mod:`ariapp.media.audio` (the conversation must not import the call layer); this name
stays for imports of the old path until they are updated."""

from ariapp.media.audio import Listener, Speaker, SpeechHandle

__all__ = ["Listener", "Speaker", "SpeechHandle"]
