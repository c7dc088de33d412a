"""Tests for aipbx.sealing_sweep: finished calls left in clear are sealed, calls in progress are not."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from aipbx import sealing, sealing_sweep
from aipbx.sealing import Keyring, new_key_spec
from aipbx.sealing_sweep import QUIET_S, SETTLE_S, SweepReport, sweep

KEYS = Keyring.parse(new_key_spec("k1"))
NOW = time.time()


def call_folder(root: Path, call_id: str, names: tuple[str, ...], age_s: float) -> Path:
    """A call folder whose files were last written ``age_s`` ago."""
    folder = root / call_id
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_bytes(b"RIFF" + f"{call_id}/{name}".encode())
        os.utime(folder / name, (NOW - age_s, NOW - age_s))
    return folder


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


WAVS = ("caller.wav", "callee.wav", "mixed.wav")


def test_the_sweep_seals_finished_calls_and_leaves_calls_in_progress_alone(tmp_path: Path) -> None:
    # given: a call MixMonitor recorded while the ARI app was down (no metadata.json, long quiet),
    down = call_folder(tmp_path, "recorded-while-down", WAVS, QUIET_S + 5)
    # a call whose seal failed at hang-up (metadata.json written, over a minute ago),
    failed = call_folder(tmp_path, "seal-failed", (*WAVS, "transcript.txt", "metadata.json"), SETTLE_S + 5)
    # one that just ended (the ARI app is sealing it now),
    ending = call_folder(tmp_path, "just-ended", (*WAVS, "metadata.json"), 2)
    # a phone-to-phone call still being recorded, and an AI call paused for a few minutes,
    live = call_folder(tmp_path, "in-progress", WAVS, 0.5)
    paused = call_folder(tmp_path, "quiet-for-minutes", WAVS, QUIET_S - 60)
    # and one already sealed
    done = call_folder(tmp_path, "sealed", (*WAVS, "metadata.json"), 3600)
    sealing.seal_directory(done, KEYS)
    # when the sweep runs
    report = sweep(tmp_path, KEYS, now=NOW)
    # then only the two finished calls were sealed, every file of them, readable as before
    assert report == SweepReport(calls=2, found=8, sealed=8, failed=0, left=0)
    assert names(down) == ["callee.wav.enc", "caller.wav.enc", "mixed.wav.enc"]
    assert names(failed) == [
        "callee.wav.enc",
        "caller.wav.enc",
        "metadata.json.enc",
        "mixed.wav.enc",
        "transcript.txt.enc",
    ]
    assert sealing.read_bytes(down, "mixed.wav", KEYS) == b"RIFFrecorded-while-down/mixed.wav"
    for folder in (ending, live, paused):
        assert all(not n.endswith(".enc") for n in names(folder)), folder.name
    # and a second run finds nothing more (idempotent)
    assert sweep(tmp_path, KEYS, now=NOW) == SweepReport()


def test_a_metadata_file_already_sealed_still_marks_the_call_finished(tmp_path: Path) -> None:
    # given a call whose metadata.json was sealed but whose WAV failed to be
    folder = call_folder(tmp_path, "half", ("mixed.wav", "metadata.json"), SETTLE_S + 1)
    sealing.seal_file(folder / "metadata.json", KEYS)
    # then the sweep seals the rest a minute later, not ten
    assert sweep(tmp_path, KEYS, now=NOW).sealed == 1
    assert names(folder) == ["metadata.json.enc", "mixed.wav.enc"]


def test_without_a_key_the_sweep_counts_clear_files_and_changes_nothing(tmp_path: Path) -> None:
    folder = call_folder(tmp_path, "c1", (*WAVS, "metadata.json"), SETTLE_S + 1)
    call_folder(tmp_path, "c2", WAVS, 1)  # in progress: not counted
    report = sweep(tmp_path, None, now=NOW)
    assert report == SweepReport(calls=1, found=4, sealed=0, failed=0, left=4)
    assert names(folder) == ["callee.wav", "caller.wav", "metadata.json", "mixed.wav"]


def test_a_failed_seal_leaves_the_file_in_clear_and_counts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = call_folder(tmp_path, "c1", (*WAVS, "metadata.json"), SETTLE_S + 1)
    real = sealing_sweep.seal_file

    def disk_full_for_mixed(path: Path, keys: Keyring) -> Path:
        if path.name == "mixed.wav":
            raise OSError(28, "No space left on device")
        return real(path, keys)

    monkeypatch.setattr(sealing_sweep, "seal_file", disk_full_for_mixed)
    report = sweep(tmp_path, KEYS, now=NOW)
    assert report == SweepReport(calls=1, found=4, sealed=3, failed=1, left=1)
    assert (folder / "mixed.wav").read_bytes() == b"RIFFc1/mixed.wav"  # never deleted
    assert "could not seal c1/mixed.wav (left in clear for the next sweep)" in caplog.text
    # and once the disk has room, the next sweep seals it
    monkeypatch.setattr(sealing_sweep, "seal_file", real)
    assert sweep(tmp_path, KEYS, now=NOW) == SweepReport(calls=1, found=1, sealed=1)


def test_a_folder_another_process_is_sealing_is_skipped(tmp_path: Path) -> None:
    folder = call_folder(tmp_path, "c1", (*WAVS, "metadata.json"), SETTLE_S + 1)
    with sealing.call_lock(folder) as held:  # the ARI app, sealing it at hang-up
        assert held
        assert sweep(tmp_path, KEYS, now=NOW) == SweepReport()
    assert sweep(tmp_path, KEYS, now=NOW).sealed == 4


def test_start_up_sweep_seals_a_crash_leftover_at_once(tmp_path: Path) -> None:
    # the ARI app at start-up has nothing in flight: a folder with metadata.json needs no settling time
    folder = call_folder(tmp_path, "crashed", ("mixed.wav", "metadata.json"), 1)
    assert sweep(tmp_path, KEYS, now=NOW, settle_s=0.0).sealed == 2
    assert names(folder) == ["metadata.json.enc", "mixed.wav.enc"]
    assert sweep(tmp_path / "missing", KEYS) == SweepReport()


def test_observe_exports_counters_and_only_the_periodic_sweep_sets_the_gauge() -> None:
    from prometheus_client import REGISTRY

    def value(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0

    before = value("aipbx_recordings_clear_found_total"), value("aipbx_recordings_seal_failures_total")
    sealing_sweep.observe(SweepReport(calls=1, found=3, sealed=2, failed=1, left=1), periodic=True)
    assert value("aipbx_recordings_clear_found_total") == before[0] + 3
    assert value("aipbx_recordings_seal_failures_total") == before[1] + 1
    assert value("aipbx_recordings_clear_files") == 1
    assert value("aipbx_recordings_sweep_timestamp_seconds") >= NOW
    sealing_sweep.observe(SweepReport(calls=1, found=2, sealed=2), periodic=False)  # the ARI app's start-up
    assert value("aipbx_recordings_clear_files") == 1
    sealing_sweep.observe(SweepReport(), periodic=True)
    assert value("aipbx_recordings_clear_files") == 0
