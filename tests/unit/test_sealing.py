"""Tests for aipbx.sealing: the sealed file format, the reader API, the binding to a call, rotation and rewrap."""

from __future__ import annotations

import base64
import dataclasses
import io
import os
import shutil
import stat
import struct
import tracemalloc
import wave
from pathlib import Path

import pytest

from aipbx import sealing
from aipbx.sealing import (
    FormatError,
    Keyring,
    KeyringError,
    MisplacedError,
    NotSealedError,
    TamperedError,
    TruncatedError,
    UnknownKeyError,
    new_key_spec,
)

OLD = Keyring.parse(new_key_spec("k0"))
# tests/fixtures/sealing/v1: a call sealed by the first format (no binding), with a test-only key.
V1_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "sealing" / "v1"
V1_KEYS = Keyring.parse("v1test:dGVzdC1vbmx5IGtleSBmb3IgdGhlIHYxIGZpeHR1cmU=")  # "test-only key for the v1 fixture"
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


# --- binding: a sealed file opens only in its call's folder, under its name ------------------------
def two_sealed_calls(tmp_path: Path) -> tuple[Path, Path]:
    calls = []
    for call_id in ("call-a", "call-b"):
        folder = tmp_path / call_id
        folder.mkdir()
        for name in ("caller.wav", "callee.wav"):
            (folder / name).write_bytes(f"RIFF {call_id} {name} ".encode() * 300)
        sealing.seal_directory(folder, OLD)
        calls.append(folder)
    return calls[0], calls[1]


def test_a_file_moved_to_another_call_does_not_open_and_the_error_names_both_places(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given two sealed calls, and call-a's caller audio put in the place of call-b's
    call_a, call_b = two_sealed_calls(tmp_path)
    (call_a / "caller.wav.enc").replace(call_b / "caller.wav.enc")
    # then it does not open there
    with pytest.raises(MisplacedError) as caught:
        sealing.open_recording(call_b, "caller.wav", OLD)
    assert "sealed as call 'call-a', caller.wav but lies at call 'call-b', caller.wav" in str(caught.value)
    assert isinstance(caught.value, TamperedError)  # what every reader already handles
    # and even a reader that skipped that check could not decrypt it: the place is in every chunk's AAD
    with monkeypatch.context() as patch:
        patch.setattr(sealing.SealedReader, "_check_place", lambda self: None)
        with pytest.raises(TamperedError, match="chunk 0 failed authentication"):
            sealing.open_recording(call_b, "caller.wav", OLD)
    # and back in its own folder it opens again
    (call_b / "caller.wav.enc").replace(call_a / "caller.wav.enc")
    assert sealing.read_bytes(call_a, "caller.wav", OLD).startswith(b"RIFF call-a caller.wav")


def test_two_tracks_swapped_within_a_call_do_not_open(tmp_path: Path) -> None:
    call_a, _ = two_sealed_calls(tmp_path)
    (call_a / "caller.wav.enc").rename(call_a / "x")
    (call_a / "callee.wav.enc").rename(call_a / "caller.wav.enc")
    (call_a / "x").rename(call_a / "callee.wav.enc")
    for name, other in (("caller.wav", "callee.wav"), ("callee.wav", "caller.wav")):
        with pytest.raises(MisplacedError, match=f"sealed as call 'call-a', {other} but lies at call 'call-a', {name}"):
            sealing.read_bytes(call_a, name, OLD)


def test_the_binding_is_not_readable_in_the_file_and_a_forged_one_fails_authentication(tmp_path: Path) -> None:
    # given two sealed calls: no call id or file name is readable in their sealed bytes
    call_a, call_b = two_sealed_calls(tmp_path)
    for folder in (call_a, call_b):
        for path in folder.iterdir():
            raw = path.read_bytes()
            assert b"call-" not in raw and b".wav" not in raw, path
    # when call-a's file is moved to call-b with the sealed binding of call-b's own file put in its header
    a_file, b_file = call_a / "caller.wav.enc", call_b / "caller.wav.enc"
    with a_file.open("rb") as handle:
        a_header = sealing.read_header(handle)
    with b_file.open("rb") as handle:
        b_header = sealing.read_header(handle)
    forged = dataclasses.replace(a_header, binding=b_header.binding).pack()
    b_file.write_bytes(forged + a_file.read_bytes()[a_header.size :])
    # then it is refused: the binding is sealed with each file's own data key
    with pytest.raises(TamperedError, match="binding in its header failed authentication"):
        sealing.read_bytes(call_b, "caller.wav", OLD)


def test_write_bytes_binds_too(tmp_path: Path) -> None:
    for call_id in ("a", "b"):
        (tmp_path / call_id).mkdir()
        sealing.write_bytes(tmp_path / call_id, "metadata.json", f'{{"call": "{call_id}"}}'.encode(), OLD)
    (tmp_path / "a" / "metadata.json.enc").replace(tmp_path / "b" / "metadata.json.enc")
    with pytest.raises(MisplacedError):
        sealing.read_text(tmp_path / "b", "metadata.json", OLD)


def test_the_binding_uses_the_folder_name_even_through_a_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    call_a, _ = two_sealed_calls(tmp_path)
    monkeypatch.chdir(call_a)
    assert sealing.read_bytes(Path("."), "caller.wav", OLD).startswith(b"RIFF call-a")


def test_files_of_the_first_format_still_open_unbound_and_bind_reseals_them(tmp_path: Path) -> None:
    # given a call sealed before the binding existed (version 1)
    shutil.copytree(V1_DIR, tmp_path / "rec")
    folder = tmp_path / "rec" / "call-v1"
    caller = sealing.read_bytes(folder, "caller.wav", V1_KEYS)
    assert caller == b"RIFF-v1-caller " * 200
    assert sealing.read_text(folder, "metadata.json", V1_KEYS) == '{"call": {"call_id": "call-v1"}}'
    # (unbound: it even opens from another folder, which is what bind fixes)
    shutil.copytree(folder, tmp_path / "elsewhere")
    assert sealing.read_bytes(tmp_path / "elsewhere", "caller.wav", V1_KEYS) == caller
    # and rewrap keeps it a version 1 file that still opens
    rotated = Keyring.parse(new_key_spec("k5") + ",v1test:" + _b64(V1_KEYS.keys[0][1]))
    assert sealing.rewrap_tree(tmp_path / "rec", rotated) == (2, 0)
    assert sealing.read_bytes(folder, "caller.wav", rotated) == caller
    # when `bind` reseals the tree
    assert sealing.bind_tree(tmp_path / "rec", rotated) == (2, 0)
    # then the files are version 2 with the same content, 0600, bound to call-v1
    with (folder / "caller.wav.enc").open("rb") as handle:
        assert sealing.read_header(handle).version == 2
    assert stat.S_IMODE((folder / "caller.wav.enc").stat().st_mode) == 0o600
    assert sealing.read_bytes(folder, "caller.wav", rotated) == caller
    (folder / "caller.wav.enc").replace(tmp_path / "elsewhere" / "caller.wav.enc")
    with pytest.raises(MisplacedError, match="call 'call-v1', caller.wav"):
        sealing.read_bytes(tmp_path / "elsewhere", "caller.wav", rotated)
    assert sealing.bind_tree(tmp_path / "rec", rotated) == (0, 1)  # metadata.json.enc is left, already bound


def test_bind_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    shutil.copytree(V1_DIR, tmp_path / "rec")
    monkeypatch.setenv("AIPBX_RECORDINGS_KEYS", "v1test:" + _b64(V1_KEYS.keys[0][1]))
    assert sealing.main(["bind", "--dir", str(tmp_path / "rec")]) == 0
    assert "bound 2 file(s) to their call and name; 0 already were" in capsys.readouterr().out


def test_rewrap_keeps_the_binding(tmp_path: Path) -> None:
    call_a, call_b = two_sealed_calls(tmp_path)
    rotated = Keyring.parse(new_key_spec("k1") + ",k0:" + _b64(OLD.keys[0][1]))
    assert sealing.rewrap_tree(tmp_path, rotated) == (4, 0)
    assert sealing.read_bytes(call_a, "callee.wav", rotated).startswith(b"RIFF call-a callee.wav")
    (call_a / "callee.wav.enc").replace(call_b / "callee.wav.enc")
    with pytest.raises(MisplacedError):
        sealing.read_bytes(call_b, "callee.wav", rotated)


# --- sealing never loses audio --------------------------------------------------------------------
def test_a_file_that_changes_while_it_is_sealed_stays_in_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # given a writer (MixMonitor) that appends while the sealed copy is being written
    source = tmp_path / "mixed.wav"
    source.write_bytes(b"RIFF" + b"a" * 5000)
    real = sealing._write_atomically

    def write_while_appending(target: Path, chunks) -> None:
        real(target, chunks)
        with source.open("ab") as out:
            out.write(b"late audio")

    monkeypatch.setattr(sealing, "_write_atomically", write_while_appending)
    # when it is sealed
    with pytest.raises(OSError, match="changed while it was sealed"):
        sealing.seal_file(source, OLD)
    # then the clear file keeps every byte and no sealed copy pretends to be the whole recording
    assert source.read_bytes() == b"RIFF" + b"a" * 5000 + b"late audio"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed.wav"]


def test_seal_directory_seals_what_it_can_and_names_what_stays_in_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "call"
    folder.mkdir()
    for name in ("caller.wav", "callee.wav", "metadata.json"):
        (folder / name).write_bytes(b"RIFF" + name.encode())
    real = sealing.seal_file

    def failing_for_callee(path: Path, keys: Keyring, chunk_size: int = sealing.CHUNK_SIZE) -> Path:
        if path.name == "callee.wav":
            raise OSError(28, "No space left on device")
        return real(path, keys, chunk_size)

    monkeypatch.setattr(sealing, "seal_file", failing_for_callee)
    with pytest.raises(NotSealedError, match=r"1 file\(s\) left in clear: callee.wav") as caught:
        sealing.seal_directory(folder, OLD)
    assert list(caught.value.failed) == [folder / "callee.wav"]
    assert sorted(p.name for p in folder.iterdir()) == ["callee.wav", "caller.wav.enc", "metadata.json.enc"]
    assert (folder / "callee.wav").read_bytes() == b"RIFFcallee.wav"
