"""The beat sweep of recordings left in clear: it seals finished calls and the worker's /metrics shows it."""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aipbx import sealing
from stack.instance import free_port
from webconsole.privacy.checks import recordings_key
from webconsole.privacy.tasks import seal_recordings_task


@pytest.fixture
def worker_metrics_port(monkeypatch: pytest.MonkeyPatch) -> int:
    from webconsole.core import worker_metrics

    port = free_port()
    monkeypatch.setenv("AIPBX_WORKER_METRICS_PORT", str(port))
    assert worker_metrics.serve() == port
    return port


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}


def recorded_while_the_app_was_down(root: Path, call_id: str, quiet_s: float) -> Path:
    """What MixMonitor leaves of a phone-to-phone call the ARI app never saw: WAVs, no metadata.json."""
    folder = root / call_id
    folder.mkdir(parents=True)
    for name in ("caller.wav", "callee.wav", "mixed.wav"):
        (folder / name).write_bytes(b"RIFF" + name.encode() * 50)
        os.utime(folder / name, (time.time() - quiet_s - 1, time.time() - quiet_s - 1))
    return folder


def test_the_sweep_runs_from_celery_beat(settings) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["recordings-seal-sweep"]
    assert entry["task"] == seal_recordings_task.name
    assert entry["schedule"] == settings.AIPBX_SEAL_SWEEP_S == 300


def test_the_task_seals_calls_recorded_while_the_ari_app_was_down_and_exports_the_counts(
    settings, tmp_path: Path, worker_metrics_port: int
) -> None:
    # given a key, a call MixMonitor recorded while the ARI app was down, and a call still recording
    keys = sealing.Keyring.parse(sealing.new_key_spec("k1"))
    settings.AIPBX_RECORDINGS_DIR = tmp_path
    settings.AIPBX_RECORDINGS_KEYRING = keys
    down = recorded_while_the_app_was_down(tmp_path, "down-1", settings.AIPBX_SEAL_QUIET_S)
    live = recorded_while_the_app_was_down(tmp_path, "live-1", 0)
    (live / "mixed.wav").write_bytes(b"RIFF growing")  # written now
    before = scrape(worker_metrics_port)
    # when the beat task runs
    report = seal_recordings_task.apply().get()
    # then the finished call is sealed, the live one untouched
    assert report == {"calls": 1, "found": 3, "sealed": 3, "failed": 0, "left": 0}
    assert sorted(p.name for p in down.iterdir()) == ["callee.wav.enc", "caller.wav.enc", "mixed.wav.enc"]
    assert sealing.read_bytes(down, "mixed.wav", keys) == b"RIFF" + b"mixed.wav" * 50
    assert (live / "mixed.wav").read_bytes() == b"RIFF growing"
    # and the worker's /metrics says clear files were found (an alert), none is left, the sweep ran
    after = scrape(worker_metrics_port)
    assert after["aipbx_recordings_clear_found_total"] == before.get("aipbx_recordings_clear_found_total", 0) + 3
    assert after["aipbx_recordings_clear_files"] == 0
    assert after["aipbx_recordings_sweep_timestamp_seconds"] >= time.time() - 60


def test_without_a_key_the_task_alarms_and_leaves_the_files(
    settings, tmp_path: Path, worker_metrics_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    settings.AIPBX_RECORDINGS_DIR = tmp_path
    settings.AIPBX_RECORDINGS_KEYRING = None  # development settings only: prod refuses to start
    folder = recorded_while_the_app_was_down(tmp_path, "down-2", settings.AIPBX_SEAL_QUIET_S)
    assert seal_recordings_task.apply().get()["left"] == 3
    assert scrape(worker_metrics_port)["aipbx_recordings_clear_files"] == 3
    assert "AIPBX_RECORDINGS_KEYS is not set" in caplog.text
    assert sorted(p.name for p in folder.iterdir()) == ["callee.wav", "caller.wav", "mixed.wav"]


def test_development_without_a_key_gets_a_system_check_warning(settings) -> None:
    settings.AIPBX_RECORDINGS_KEYRING = None
    (warning,) = recordings_key()
    assert warning.id == "privacy.W001" and "AIPBX_RECORDINGS_KEYS is not set" in warning.msg
    settings.AIPBX_RECORDINGS_KEYRING = sealing.Keyring.parse(sealing.new_key_spec("k1"))
    assert recordings_key() == []
