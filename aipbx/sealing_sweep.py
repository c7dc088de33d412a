"""The sweep: find the clear files of finished calls and seal them.

Theory of operation. A call's files are sealed when it ends (:mod:`ariapp.calls.tracker`). They stay in
clear when that did not happen: the ARI app was down while Asterisk's MixMonitor recorded a
phone-to-phone call (no ``metadata.json`` is ever written for it), a seal failed (disk full, a bad
key), or the process died between writing and sealing. The sweep walks the recordings root and decides
per call folder:

* **finished**, it has ``metadata.json`` (sealed or not: the ARI app writes it at hang-up, last) and no
  clear file changed for ``settle_s`` — the ARI app seals right after writing it, so a minute later
  nobody else will;
* **finished**, no clear file changed for ``quiet_s`` — MixMonitor and the ARI app's recorder write
  every 20 ms while a call is up, so a folder untouched for ten minutes is not being recorded;
* otherwise **in progress**: left alone and not counted.

A finished folder is sealed under its call lock (:func:`aipbx.sealing.call_lock`), skipped when
another process holds the lock (it is sealing that folder now). :func:`aipbx.sealing.seal_file` removes
a clear file only once its sealed copy is on disk and the clear file did not change meanwhile, so the
sweep never loses audio: what it cannot seal stays in clear and is counted in ``left``, which the callers
export as metrics (the worker's beat task, ``webconsole.privacy.tasks.seal_recordings_task``, and the
ARI app at start-up) so that an alert fires while any clear file of a finished call remains.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from prometheus_client import Counter, Gauge

from aipbx.sealing import Keyring, SealError, call_lock, exists, is_clear, seal_file

log = logging.getLogger(__name__)

# One definition for the ARI app (sealing at hang-up, the start-up sweep) and the worker (the beat sweep).
CLEAR_FOUND = Counter(
    "aipbx_recordings_clear_found", "Clear files of finished calls found by a sweep (they escaped sealing at hang-up)"
)
SEAL_FAILURES = Counter("aipbx_recordings_seal_failures", "Call files that could not be sealed (left in clear)")
CLEAR_LEFT = Gauge(
    "aipbx_recordings_clear_files", "Clear files of finished calls still in clear after the last periodic sweep"
)
LAST_SWEEP = Gauge("aipbx_recordings_sweep_timestamp_seconds", "When the last periodic sweep finished")

SETTLE_S = 60.0  # a folder with metadata.json: the ARI app seals it within seconds of writing it
QUIET_S = 600.0  # a folder without: nothing has written to it for this long


@dataclass(slots=True)
class SweepReport:
    calls: int = 0  # finished call folders that held clear files
    found: int = 0  # clear files in them
    sealed: int = 0
    failed: int = 0  # could not be sealed (each logged); they stay in clear
    left: int = 0  # still in clear after the sweep: failed, or no key to seal with

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def clear_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if is_clear(p))


def finished(directory: Path, clear: list[Path], now: float, settle_s: float, quiet_s: float) -> bool:
    """Whether the call of ``directory`` is over, judged from its files (see the module docstring)."""
    idle = now - max((p.stat().st_mtime for p in clear), default=0.0)
    return idle >= quiet_s or (idle >= settle_s and exists(directory, "metadata.json"))


def sweep(
    root: Path, keys: Keyring | None, *, now: float | None = None, settle_s: float = SETTLE_S, quiet_s: float = QUIET_S
) -> SweepReport:
    """Seal the clear files of the finished calls under ``root`` (count them only, without ``keys``).

    Idempotent: a second run finds what the first could not seal, and nothing else.
    """
    report = SweepReport()
    if not root.is_dir():
        return report
    now = time.time() if now is None else now
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            clear = clear_files(directory)
            if not clear or not finished(directory, clear, now, settle_s, quiet_s):
                continue
            if keys is None:
                report.calls += 1
                report.found += len(clear)
                report.left += len(clear)
            else:
                _seal_folder(directory, keys, report)
        except FileNotFoundError:  # removed meanwhile (retention, data-subject deletion)
            continue
    return report


def observe(report: SweepReport, *, periodic: bool) -> None:
    """Count a sweep in the metrics; only the periodic one (the worker's) sets the gauge of files left."""
    CLEAR_FOUND.inc(report.found)
    SEAL_FAILURES.inc(report.failed)
    if periodic:
        CLEAR_LEFT.set(report.left)
        LAST_SWEEP.set_to_current_time()


def _seal_folder(directory: Path, keys: Keyring, report: SweepReport) -> None:
    with call_lock(directory, wait=False) as held:
        if not held:
            return  # another process is sealing it right now
        clear = clear_files(directory)  # what is still clear now that we hold the lock
        if clear:
            report.calls += 1
            report.found += len(clear)
        for path in clear:
            try:
                seal_file(path, keys)
                report.sealed += 1
            except (OSError, SealError) as exc:
                log.error("could not seal %s/%s (left in clear for the next sweep): %s", directory.name, path.name, exc)
                report.failed += 1
                report.left += 1
        directory.chmod(0o700)
