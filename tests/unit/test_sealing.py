"""Tests for ariapp.sealing: the sealed file format, the reader API, rotation and rewrap."""

from __future__ import annotations

import base64
import io
import os
import stat
import struct
import tracemalloc
import wave
from pathlib import Path

import pytest

from ariapp import sealing
from ariapp.sealing import (
    FormatError,
    Keyring,
    KeyringError,
    TamperedError,
    TruncatedError,
    UnknownKeyError,
    new_key_spec,
)

OLD = Keyring.parse(new_key_spec("k0"))
CHUNK = 1024  # small chunks so a few KiB exercise many of them


def sealed(tmp_path: Path, data: bytes, keys: Keyring = OLD, name: str = "mixed.wav", chunk_size: int = CHUNK) -> Path:
    (tmp_path / name).write_bytes(data)
    return sealing.seal_file(tmp_path / name, keys, chunk_size=chunk_size)


def header_size(path: Path) -> int:
    with path.open("rb") as handle:
        return sealing.read_header(handle).size


@pytest.mark.parametrize("length", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 7])
def test_round_trip_of_every_length_around_chunk_boundaries(tmp_path: Path, length: int) -> None:
    data = os.urandom(length)
    path = sealed(tmp_path, data)
    assert path.name == "mixed.wav.enc" and not (tmp_path / "mixed.wav").exists()
    assert sealing.read_bytes(tmp_path, "mixed.wav", OLD) == data
    assert sealing.size(tmp_path, "mixed.wav") == length
    if length >= 16:
        assert data[:16] not in path.read_bytes()


def test_sealed_files_are_0600_and_the_directory_0700(tmp_path: Path) -> None:
    # given a call directory as the recorder leaves it
    folder = tmp_path / "call"
    folder.mkdir(mode=0o755)
    for name in ("caller.wav", "callee.wav", "mixed.wav", "transcript.txt", "metadata.json"):
        (folder / name).write_bytes(b"RIFF" + name.encode() * 100)
        (folder / name).chmod(0o644)
    # when it is sealed
    sealing.seal_directory(folder, OLD)
    # then only private .enc files remain, none of them with a readable RIFF header
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["callee.wav.enc", "caller.wav.enc", "metadata.json.enc", "mixed.wav.enc", "transcript.txt.enc"]
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert b"RIFF" not in path.read_bytes()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sealing.read_text(folder, "transcript.txt", OLD) == "RIFF" + "transcript.txt" * 100
    assert sealing.read_bytes(folder, "caller.wav", OLD) == b"RIFF" + b"caller.wav" * 100
    # and sealing again changes nothing (idempotent)
    assert sealing.seal_directory(folder, OLD) == []


def test_clear_files_from_before_encryption_are_still_read(tmp_path: Path) -> None:
    (tmp_path / "metadata.json").write_text('{"call": {}}', encoding="utf-8")
    assert sealing.exists(tmp_path, "metadata.json")
    assert sealing.read_text(tmp_path, "metadata.json") == '{"call": {}}'
    assert not sealing.exists(tmp_path, "mixed.wav")
    with pytest.raises(FileNotFoundError):
        sealing.open_recording(tmp_path, "mixed.wav", OLD)


def test_a_sealed_wav_opens_with_the_wave_module_through_the_reader(tmp_path: Path) -> None:
    with wave.open(str(tmp_path / "caller.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(os.urandom(16000))
    sealing.seal_file(tmp_path / "caller.wav", OLD)
    with sealing.open_recording(tmp_path, "caller.wav", OLD) as handle, wave.open(handle, "rb") as wav:
        assert (wav.getnframes(), wav.getframerate()) == (8000, 8000)


def test_wrong_key_and_missing_key_are_clear_errors(tmp_path: Path) -> None:
    sealed(tmp_path, b"secret audio")
    other_material = Keyring.parse("k0:" + new_key_spec("x").split(":", 1)[1])  # same id, other key
    with pytest.raises(TamperedError, match="does not open with master key 'k0'"):
        sealing.open_recording(tmp_path, "mixed.wav", other_material)
    with pytest.raises(UnknownKeyError, match="'k0', which is not in AIPBX_RECORDINGS_KEYS"):
        sealing.open_recording(tmp_path, "mixed.wav", Keyring.parse(new_key_spec("k9")))
    with pytest.raises(UnknownKeyError, match="AIPBX_RECORDINGS_KEYS is not set"):
        sealing.open_recording(tmp_path, "mixed.wav", None)


@pytest.mark.parametrize("where", ["wrapped key", "stream header", "first chunk", "last chunk", "last tag byte"])
def test_any_flipped_byte_fails_authentication(tmp_path: Path, where: str) -> None:
    path = sealed(tmp_path, os.urandom(3 * CHUNK + 10))
    start = header_size(path)
    offset = {
        "wrapped key": start - 20 - 30,
        "stream header": start - 4,
        "first chunk": start + 5,
        "last chunk": start + 3 * (CHUNK + 16) + 2,
        "last tag byte": path.stat().st_size - 1,
    }[where]
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(TamperedError), sealing.open_recording(tmp_path, "mixed.wav", OLD) as handle:
        handle.read()


def test_truncated_file_is_refused_even_at_a_chunk_boundary(tmp_path: Path) -> None:
    path = sealed(tmp_path, os.urandom(4 * CHUNK))
    raw = path.read_bytes()
    for cut in (len(raw) - (CHUNK + 16), len(raw) - 1, header_size(path) + 3):
        path.write_bytes(raw[:cut])
        with pytest.raises(TruncatedError, match="truncated"):
            sealing.open_recording(tmp_path, "mixed.wav", OLD)
    path.write_bytes(raw[:20])
    with pytest.raises(TruncatedError, match="header"):
        sealing.open_recording(tmp_path, "mixed.wav", OLD)
    path.write_bytes(raw + b"extra")
    with pytest.raises(TruncatedError, match="unexpected bytes"):
        sealing.open_recording(tmp_path, "mixed.wav", OLD)


def test_a_forged_shorter_length_with_dropped_chunks_is_refused(tmp_path: Path) -> None:
    # given an attacker who drops the last two chunks and writes a matching length in the header
    path = sealed(tmp_path, os.urandom(4 * CHUNK))
    raw = bytearray(path.read_bytes())
    start = header_size(path)
    raw[start - 16 : start - 8] = struct.pack(">Q", 2 * CHUNK)
    path.write_bytes(bytes(raw[: start + 2 * (CHUNK + 16)]))
    # then chunk 0 no longer authenticates (the length is in every chunk's AAD)
    with pytest.raises(TamperedError, match="chunk 0"):
        sealing.open_recording(tmp_path, "mixed.wav", OLD)


def test_reordered_chunks_are_refused(tmp_path: Path) -> None:
    path = sealed(tmp_path, os.urandom(3 * CHUNK + 1))
    raw = path.read_bytes()
    start, step = header_size(path), CHUNK + 16
    swapped = raw[:start] + raw[start + step : start + 2 * step] + raw[start : start + step] + raw[start + 2 * step :]
    path.write_bytes(swapped)
    with pytest.raises(TamperedError, match="chunk 0"):
        sealing.open_recording(tmp_path, "mixed.wav", OLD)


def test_not_a_sealed_file_and_unknown_version(tmp_path: Path) -> None:
    (tmp_path / "mixed.wav.enc").write_bytes(b"RIFF" + b"\0" * 100)
    with pytest.raises(FormatError, match="bad magic"):
        sealing.open_recording(tmp_path, "mixed.wav", OLD)
    (tmp_path / "mixed.wav.enc").write_bytes(sealing.MAGIC + b"\x09" + b"\0" * 100)
    with pytest.raises(FormatError, match="version 9"):
        sealing.open_recording(tmp_path, "mixed.wav", OLD)


def test_rotation_keeps_old_recordings_readable_and_seals_with_the_new_key(tmp_path: Path) -> None:
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old_dir.mkdir()
    new_dir.mkdir()
    sealed(old_dir, b"old call")
    # when a new key is put first
    rotated = Keyring.parse(new_key_spec("k1") + "," + ",".join(f"{k}:{_b64(v)}" for k, v in OLD.keys))
    sealed(new_dir, b"new call", keys=rotated)
    # then both open with the rotated keyring, and only the old one with the old keyring
    assert sealing.read_bytes(old_dir, "mixed.wav", rotated) == b"old call"
    assert sealing.read_bytes(new_dir, "mixed.wav", rotated) == b"new call"
    with pytest.raises(UnknownKeyError, match="'k1'"):
        sealing.open_recording(new_dir, "mixed.wav", OLD)


def test_rewrap_moves_files_to_the_current_key_without_reencrypting(tmp_path: Path) -> None:
    folder = tmp_path / "rec" / "call-1"
    folder.mkdir(parents=True)
    data = os.urandom(3 * CHUNK + 5)
    path = sealed(folder, data)
    before = path.read_bytes()
    rotated = Keyring.parse(new_key_spec("k1") + ",k0:" + _b64(OLD.keys[0][1]))
    # when rewrapped
    assert sealing.rewrap_tree(tmp_path / "rec", rotated) == (1, 0)
    # then the ciphertext after the header is byte-for-byte the same, the header names k1,
    after = path.read_bytes()
    start = header_size(path)  # the same size: both key ids have two characters
    assert len(after) == len(before) and after[start:] == before[start:] and after[:start] != before[:start]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # and the file opens with the new key alone, but no longer with the old one
    new_only = Keyring((rotated.keys[0],))
    assert sealing.read_bytes(folder, "mixed.wav", new_only) == data
    with pytest.raises(UnknownKeyError):
        sealing.open_recording(folder, "mixed.wav", OLD)
    assert sealing.rewrap_tree(tmp_path / "rec", rotated) == (0, 1)


def test_rewrap_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    sealed(tmp_path, b"abc")
    monkeypatch.setenv("AIPBX_RECORDINGS_KEYS", new_key_spec("k2") + ",k0:" + _b64(OLD.keys[0][1]))
    assert sealing.main(["rewrap", "--dir", str(tmp_path)]) == 0
    assert "rewrapped 1 file(s) to key 'k2'" in capsys.readouterr().out
    assert sealing.main(["cat", str(tmp_path), "mixed.wav"]) == 0
    assert capsys.readouterr().out == "abc"


def test_streaming_a_big_file_uses_constant_memory(tmp_path: Path) -> None:
    # given a 24 MiB recording sealed in 64 KiB chunks (written without holding it in memory)
    source = tmp_path / "mixed.wav"
    block = os.urandom(1024 * 1024)
    with source.open("wb") as out:
        for _ in range(24):
            out.write(block)
    tracemalloc.start()
    try:
        sealing.seal_file(source, OLD)
        sealing_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        # when it is read back block by block, as the console streams it
        total = 0
        with sealing.open_recording(tmp_path, "mixed.wav", OLD) as handle:
            while piece := handle.read(64 * 1024):
                offset = total % len(block)
                assert piece[:16] == block[offset : offset + 16]
                total += len(piece)
        reading_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # then both directions held well under 1 MiB of the 24 MiB at any time
    assert total == 24 * 1024 * 1024
    assert sealing_peak < 1024 * 1024 and reading_peak < 1024 * 1024, (sealing_peak, reading_peak)


def test_the_reader_seeks_like_a_file(tmp_path: Path) -> None:
    data = os.urandom(5 * CHUNK)
    sealed(tmp_path, data)
    with sealing.open_recording(tmp_path, "mixed.wav", OLD) as handle:
        assert handle.seek(0, io.SEEK_END) == len(data)
        handle.seek(3 * CHUNK - 3)
        assert handle.read(10) == data[3 * CHUNK - 3 : 3 * CHUNK + 7]
        handle.seek(0)
        assert handle.read() == data


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("k1", "has no ':'"),
        ("k1:not base64!", "not valid base64"),
        ("k1:AAAA", "3 bytes"),
        (",", "holds no key"),
        ("k1:" + "A" * 43 + "=,k1:" + "A" * 43 + "=", "appears twice"),
    ],
)
def test_bad_key_settings_are_clear_and_never_echo_the_key(text: str, message: str) -> None:
    with pytest.raises(KeyringError, match=message) as caught:
        Keyring.parse(text)
    assert "AAAA" not in str(caught.value)


def test_no_keys_configured_means_clear() -> None:
    assert Keyring.from_env({}) is None
    assert Keyring.from_env({"AIPBX_RECORDINGS_KEYS": " "}) is None
    assert Keyring.from_env({"AIPBX_RECORDINGS_KEYS": new_key_spec("a") + "," + new_key_spec("b")}).current[0] == "a"


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_finished_calls_left_in_clear_by_a_crash_are_sealed_at_start_up_and_calls_in_progress_are_not(
    tmp_path: Path,
) -> None:
    # given: a finished call the app died before sealing, a call still being recorded, a sealed one
    finished, ongoing, done = (tmp_path / name for name in ("finished", "ongoing", "done"))
    for folder in (finished, ongoing, done):
        folder.mkdir()
        (folder / "mixed.wav").write_bytes(b"RIFF" + folder.name.encode())
    (finished / "metadata.json").write_text("{}")
    (done / "metadata.json").write_text("{}")
    sealing.seal_directory(done, OLD)
    # when
    count = sealing.seal_leftovers(tmp_path, OLD)
    # then
    assert count == 1  # "done" is already sealed (its metadata.json is now .enc)
    assert sorted(p.name for p in finished.iterdir()) == ["metadata.json.enc", "mixed.wav.enc"]
    assert sealing.read_bytes(finished, "mixed.wav", OLD) == b"RIFFfinished"
    assert sorted(p.name for p in ongoing.iterdir()) == ["mixed.wav"]  # MixMonitor may still be writing it
    assert sealing.seal_leftovers(tmp_path / "missing", OLD) == 0
