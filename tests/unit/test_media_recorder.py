"""Tests for ariapp.media.recorder, reading the files back with the stdlib wave module."""

from __future__ import annotations

import errno
import io
import os
import stat
import wave
from pathlib import Path

import numpy as np
import pytest

from ariapp.media.recorder import CallRecorder, RecordingInfo, repair_wav


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as reader:
        assert reader.getnchannels() == 1
        assert reader.getsampwidth() == 2
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
        return samples.astype(np.int16), reader.getframerate()


def frame(value: int, samples: int = 160) -> np.ndarray:
    return np.full(samples, value, dtype=np.int16)


def test_duration_and_frames(tmp_path: Path) -> None:
    recorder = CallRecorder(tmp_path / "call", sample_rate=8000)
    for _ in range(50):
        recorder.write(frame(100), frame(-100))

    info = recorder.close()

    assert info.frames == 50
    assert info.duration_seconds == pytest.approx(1.0)
    assert info.sample_rate == 8000
    for path in info.paths:
        samples, rate = read_wav(path)
        assert rate == 8000
        assert len(samples) == 8000


def test_tracks_stay_aligned_when_sides_alternate(tmp_path: Path) -> None:
    recorder = CallRecorder(tmp_path)
    # given the caller speaks on even ticks and the assistant on odd ticks (None = silence)
    for tick in range(10):
        recorder.write(frame(tick + 1) if tick % 2 == 0 else None, frame(-(tick + 1)) if tick % 2 else None)

    info = recorder.close()

    caller, _ = read_wav(info.caller)
    callee, _ = read_wav(info.callee)
    mixed, _ = read_wav(info.mixed)
    assert len(caller) == len(callee) == len(mixed) == 1600
    for tick in range(10):
        window = slice(tick * 160, (tick + 1) * 160)
        expected_caller = tick + 1 if tick % 2 == 0 else 0
        expected_callee = -(tick + 1) if tick % 2 else 0
        assert np.all(caller[window] == expected_caller)
        assert np.all(callee[window] == expected_callee)
        assert np.all(mixed[window] == expected_caller + expected_callee)


def test_mixing_clips_instead_of_wrapping(tmp_path: Path) -> None:
    recorder = CallRecorder(tmp_path)
    inbound = np.array([30000, -30000, 1000, 32767, -32768] * 32, dtype=np.int16)
    outbound = np.array([30000, -30000, -500, 1, -1] * 32, dtype=np.int16)
    recorder.write(inbound, outbound)

    mixed, _ = read_wav(recorder.close().mixed)

    assert mixed[:5].tolist() == [32767, -32768, 500, 32767, -32768]


def test_arbitrary_audio_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    sent = rng.integers(-32768, 32768, size=(20, 160), dtype=np.int16)
    recorder = CallRecorder(tmp_path)
    for row in sent:
        recorder.write(row, None)

    caller, _ = read_wav(recorder.close().caller)

    assert np.array_equal(caller, sent.reshape(-1))


def test_close_is_idempotent(tmp_path: Path) -> None:
    recorder = CallRecorder(tmp_path)
    recorder.write(frame(1), frame(2))

    first = recorder.close()
    second = recorder.close()

    assert first == second
    assert isinstance(first, RecordingInfo)
    assert recorder.closed
    with pytest.raises(RuntimeError):
        recorder.write(frame(1), None)


def test_files_are_valid_before_close_missing_at_most_one_second(tmp_path: Path) -> None:
    # given a recorder that is never closed (the process dies mid-call) after 1.14 s
    recorder = CallRecorder(tmp_path)
    for _ in range(57):
        recorder.write(frame(5), None)

    # then the files on disk are valid and hold every whole second written (50 frames)
    for name in ("caller.wav", "callee.wav", "mixed.wav"):
        samples, _ = read_wav(tmp_path / name)
        assert len(samples) == 50 * 160
    recorder.close()
    for name in ("caller.wav", "callee.wav", "mixed.wav"):
        samples, _ = read_wav(tmp_path / name)
        assert len(samples) == 57 * 160


def test_partial_write_then_close(tmp_path: Path) -> None:
    recorder = CallRecorder(tmp_path)
    recorder.write(frame(3), None)
    recorder.write(None, frame(4))
    recorder.write(None, None)

    info = recorder.close()

    assert info.frames == 3
    assert info.duration_seconds == pytest.approx(0.06)
    mixed, _ = read_wav(info.mixed)
    assert mixed.tolist() == [3] * 160 + [4] * 160 + [0] * 160


def test_close_without_any_write(tmp_path: Path) -> None:
    info = CallRecorder(tmp_path).close()

    assert info.frames == 0 and info.duration_seconds == 0
    assert all(len(read_wav(path)[0]) == 0 for path in info.paths)


def test_sixteen_khz_frames(tmp_path: Path) -> None:
    recorder = CallRecorder(tmp_path, sample_rate=16000)
    recorder.write(frame(1, 320), frame(1, 320))
    with pytest.raises(ValueError):
        recorder.write(frame(1, 160), None)

    info = recorder.close()

    assert info.duration_seconds == pytest.approx(0.02)
    assert read_wav(info.mixed)[1] == 16000


def test_permissions(tmp_path: Path) -> None:
    # a umask that strips owner bits: the modes must be set explicitly, not left to mkdir/open
    old_umask = os.umask(0o277)
    try:
        info = CallRecorder(tmp_path / "calls" / "abc").close()
    finally:
        os.umask(old_umask)

    assert stat.S_IMODE((tmp_path / "calls" / "abc").stat().st_mode) == 0o700
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in info.paths)


def test_existing_recording_is_not_overwritten(tmp_path: Path) -> None:
    first = CallRecorder(tmp_path)
    first.write(frame(9), None)
    first.close()

    with pytest.raises(FileExistsError):
        CallRecorder(tmp_path)

    caller, _ = read_wav(tmp_path / "caller.wav")
    assert len(caller) == 160


def test_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"precious")
    recording = tmp_path / "rec"
    recording.mkdir()
    (recording / "mixed.wav").symlink_to(target)

    with pytest.raises(OSError):
        CallRecorder(recording)

    assert target.read_bytes() == b"precious"


@pytest.mark.parametrize("bad", [np.zeros(160, dtype=np.float32), np.zeros(161, dtype=np.int16)])
def test_rejects_malformed_frames(tmp_path: Path, bad: np.ndarray) -> None:
    recorder = CallRecorder(tmp_path)

    with pytest.raises(ValueError):
        recorder.write(bad, None)
    with pytest.raises(ValueError):
        recorder.write(None, bad)
    assert recorder.close().frames == 0


def test_rejects_sample_rate_without_whole_frames(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        CallRecorder(tmp_path, sample_rate=11025)


class FullDisk:
    """One disk with ``room`` bytes free for every file opened on it; then writes fail with ENOSPC
    (a write that does not fit goes through in part, as on a real file system)."""

    def __init__(self, room: int) -> None:
        self.room = room

    def create(self, path: Path):
        disk = self

        class Limited(io.FileIO):
            def write(self, data) -> int:
                data = bytes(data)
                if self.tell() + len(data) <= os.fstat(self.fileno()).st_size:
                    return super().write(data)  # rewriting what is there (a header) takes no room
                if disk.room <= 0:
                    raise OSError(errno.ENOSPC, "No space left on device")
                part = data[: disk.room]
                disk.room -= len(part)
                return super().write(part)

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return io.BufferedWriter(Limited(fd, "wb"))


@pytest.mark.parametrize("room", [0, 30, 20_000, 70_001, 150_000])
def test_a_full_disk_stops_the_recording_not_the_writer_and_leaves_whole_files(
    tmp_path: Path, room: int, monkeypatch
) -> None:
    # given a disk with room for part of five seconds of three tracks (16 KB per second each)
    monkeypatch.setattr(CallRecorder, "_create", staticmethod(FullDisk(room).create))
    recorder = CallRecorder(tmp_path / "call", sample_rate=8000)
    # when the call goes on for five seconds
    for _ in range(250):
        recorder.write(frame(100), frame(-100))  # never raises: the call must not notice
    info = recorder.close()
    # then the recorder says why it stopped, and every file left is a whole WAV telling what it holds
    assert isinstance(recorder.error, OSError) and recorder.error.errno == errno.ENOSPC
    assert recorder.close() is info  # and closing again is harmless
    left = [path for path in info.paths if path.exists()]
    lengths = {len(read_wav(path)[0]) for path in left}
    assert len(lengths) <= 1  # still aligned
    for path in left:
        assert path.stat().st_size == 44 + 2 * len(read_wav(path)[0])
    assert info.duration_seconds == pytest.approx((lengths or {0}).pop() / 8000, abs=0.02)
    assert info.duration_seconds < 5.0


def test_repair_wav_makes_the_header_tell_the_truth(tmp_path: Path) -> None:
    # given a WAV whose data ran past its header (a write went through in part) and a torn one
    path, torn = tmp_path / "a.wav", tmp_path / "b.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(frame(7, 800).tobytes())
    with open(path, "ab") as handle:
        handle.write(b"\x01\x02\x03")  # one and a half samples more
    torn.write_bytes(b"RIFF\x00")
    # when
    kept = repair_wav((path,))
    removed = repair_wav((torn,))
    # then
    assert kept == 1602 and len(read_wav(path)[0]) == 801
    assert removed == 0 and not torn.exists()
