"""Writing the files every call leaves in ``recordings/<call_id>/`` (listed in :mod:`aipbx.recordings`).

AI calls are recorded by the ARI app from the media it already holds, tick by tick on the 20 ms
clock, so the three files are sample-aligned and callee.wav is exactly what we sent (barge-in cuts
included). Phone-to-phone calls are bridged inside Asterisk, so Asterisk's MixMonitor records them
(started from the dialplan when the callee answers) and the ARI app adds transcript and metadata.
"""

from __future__ import annotations

import json
import logging
import os
import wave
from pathlib import Path
from typing import Any

import numpy as np

from aipbx.recordings import FILES, transcript_text
from ariapp import metrics
from ariapp.cdr import CallRecord
from ariapp.media.recorder import CallRecorder

log = logging.getLogger(__name__)


def _write_private(path: Path, text: str) -> None:
    """Whole or not at all: a full disk must not leave half a metadata.json."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def wav_seconds(path: Path) -> float | None:
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / float(wav.getframerate())
    except (OSError, EOFError, wave.Error):
        return None


def write_call_files(
    directory: Path, record: CallRecord, turns: list[dict[str, Any]], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write transcript.txt and metadata.json next to the WAV files; returns the metadata."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    durations = {name: wav_seconds(directory / name) for name in FILES}
    metadata = {
        "call": record.to_cdr(),
        "files": {name: (round(d, 3) if d is not None else None) for name, d in durations.items()},
        "turns": turns,
        **(extra or {}),
    }
    _write_private(directory / "transcript.txt", transcript_text(turns))
    _write_private(directory / "metadata.json", json.dumps(metadata, ensure_ascii=False, indent=2, default=str))
    return metadata


class CallRecording:
    """Recording of one AI call, fed once per media tick.

    When the disk refuses a write the recording stops and the call goes on: the loss is logged
    once, counted (``aipbx_recordings_failed_total``) and put in the call's CDR line
    (``recording_error``, by the session); the files keep what was whole (ariapp.media.recorder).
    """

    def __init__(self, directory: Path, sample_rate: int) -> None:
        self.directory = directory
        self._recorder = CallRecorder(directory, sample_rate=sample_rate)
        self._closed = False
        self._reported = False

    @property
    def error(self) -> str | None:
        """Why the recording stopped before the call did, and where (None: it is complete)."""
        exc = self._recorder.error
        if exc is None:
            return None
        return f"{exc.strerror or exc}: recording stopped after {self._recorder.duration_seconds:.1f} s"

    def write(self, inbound: np.ndarray | None, outbound: np.ndarray | None) -> None:
        if not self._closed:
            self._recorder.write(inbound, outbound)
            self._report()

    def close(self) -> None:
        """Finish the WAV files (idempotent); transcript and metadata follow with the CDR."""
        if not self._closed:
            self._closed = True
            self._recorder.close()
            self._report()

    def _report(self) -> None:
        if self._recorder.error is not None and not self._reported:
            self._reported = True
            metrics.recording_failed()
            log.error("recording of %s stopped, the call goes on: %s", self.directory.name, self.error)
