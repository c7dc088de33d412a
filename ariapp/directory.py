"""The PBX's extension directory, read from ``asterisk/extensions.yaml``.

One source for the PJSIP endpoints and dialplan that ``stack`` renders, for the ARI app (who owns the
called extension, which greeting and language to use) and for the web console. Pure: no I/O beyond
reading the file, no Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

EXTENSION_RE = re.compile(r"^[1-9][0-9]{1,5}$")
LANGUAGES = ("en-US", "ko-KR")
DEFAULT_GREETING = "Hello, this is the AI assistant of {owner}. How can I help you?"


class DirectoryError(ValueError):
    """The extensions file is missing or invalid; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Extension:
    ext: str
    owner: str
    no_answer_timeout: int
    language: str
    greeting: str

    @property
    def greeting_text(self) -> str:
        return self.greeting.replace("{owner}", self.owner)


@dataclass(frozen=True, slots=True)
class Directory:
    extensions: tuple[Extension, ...]

    def get(self, ext: str) -> Extension | None:
        for item in self.extensions:
            if item.ext == ext:
                return item
        return None

    def __iter__(self):
        return iter(self.extensions)

    def __len__(self) -> int:
        return len(self.extensions)


def _positive_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 600:
        raise DirectoryError(f"{where}: no_answer_timeout must be an integer number of seconds in 1..600")
    return value


def parse_directory(data: object, source: str = "extensions.yaml") -> Directory:
    """Validate the parsed YAML document and build a :class:`Directory`."""
    if not isinstance(data, dict):
        raise DirectoryError(f"{source}: expected a mapping with 'defaults' and 'extensions'")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise DirectoryError(f"{source}: 'defaults' must be a mapping")
    items = data.get("extensions")
    if not isinstance(items, list) or not items:
        raise DirectoryError(f"{source}: 'extensions' must be a non-empty list")
    seen: set[str] = set()
    result = []
    for index, raw in enumerate(items):
        where = f"{source}: extensions[{index}]"
        if not isinstance(raw, dict):
            raise DirectoryError(f"{where}: expected a mapping")
        ext = str(raw.get("ext", "")).strip()
        if not EXTENSION_RE.match(ext):
            raise DirectoryError(f"{where}: ext {ext!r} must be 2-6 digits not starting with 0")
        if ext in seen:
            raise DirectoryError(f"{where}: duplicate extension {ext}")
        seen.add(ext)
        owner = str(raw.get("owner") or "").strip()
        if not owner:
            raise DirectoryError(f"{where}: owner is required")
        timeout = _positive_int(raw.get("no_answer_timeout", defaults.get("no_answer_timeout", 10)), where)
        language = str(raw.get("language", defaults.get("language", "en-US")))
        if language not in LANGUAGES:
            raise DirectoryError(f"{where}: language {language!r} must be one of {', '.join(LANGUAGES)}")
        greeting = str(raw.get("greeting") or defaults.get("greeting") or DEFAULT_GREETING).strip()
        result.append(Extension(ext, owner, timeout, language, greeting))
    return Directory(tuple(result))


def load_directory(path: Path) -> Directory:
    """Read and validate the extensions file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DirectoryError(f"cannot read the extensions file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise DirectoryError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DirectoryError(f"{path}: not valid YAML: {exc}") from exc
    return parse_directory(data, str(path))
