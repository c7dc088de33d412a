"""Compile the console's translation catalogs (``locale/<lang>/LC_MESSAGES/*.po`` -> ``.mo``), standard library only.

The ``.mo`` files are generated, never committed. Django's ``compilemessages`` needs GNU ``msgfmt``,
which a fresh machine or the slim Docker image may lack; this module writes the same binary format
(GNU gettext's, as read by Python's :mod:`gettext`), so ``make setup``, the test session and the
Docker build compile the catalogs with nothing but Python::

    python -m stack.catalogs            # every catalog under ./locale whose .mo is missing or older

Like ``msgfmt``, it leaves out fuzzy entries and entries without a translation (gettext then shows
the English msgid), and it refuses a catalog that is not UTF-8 or that it cannot parse, naming the
file and line.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import struct
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
_MAGIC = 0x950412DE
_KEYWORD = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(\".*\")\s*$")
_CONTINUATION = re.compile(r"^(\".*\")\s*$")


class CatalogError(ValueError):
    """A ``.po`` file that cannot be compiled (syntax, charset); the message names file and line."""


@dataclass
class Entry:
    """One message of a catalog: ``msgstr`` holds one string, or one per plural form."""

    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    fuzzy: bool = False

    @property
    def translated(self) -> bool:
        return bool(self.msgstr) and all(self.msgstr.values())


def parse(text: str, name: str = "<po>") -> list[Entry]:
    """The entries of a ``.po`` file's text (obsolete ``#~`` entries are dropped), header included."""
    entries: list[Entry] = []
    entry: Entry | None = None
    fuzzy = False
    target: tuple[str, int] | None = None  # which string a continuation line extends

    def finish() -> None:
        nonlocal entry
        if entry is not None:
            entries.append(entry)
        entry = None

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("#,") and "fuzzy" in {flag.strip() for flag in line[2:].split(",")}:
                fuzzy = True
            continue
        try:
            if match := _KEYWORD.match(line):
                keyword, index, quoted = match.groups()
                value = _unquote(quoted)
                if keyword in ("msgctxt", "msgid") and (entry is None or entry.msgstr):
                    finish()
                    entry = Entry(fuzzy=fuzzy)
                    fuzzy = False
                if entry is None:
                    raise CatalogError(f"{name}:{number}: {keyword} before msgid")
                if keyword == "msgctxt":
                    entry.msgctxt, target = value, ("msgctxt", 0)
                elif keyword == "msgid":
                    entry.msgid, target = value, ("msgid", 0)
                elif keyword == "msgid_plural":
                    entry.msgid_plural, target = value, ("msgid_plural", 0)
                else:
                    slot = int(index) if index is not None else 0
                    entry.msgstr[slot], target = value, ("msgstr", slot)
            elif (match := _CONTINUATION.match(line)) and entry is not None and target is not None:
                _extend(entry, target, _unquote(match.group(1)))
            else:
                raise CatalogError(f"{name}:{number}: cannot parse {line[:60]!r}")
        except (SyntaxError, ValueError) as exc:
            if isinstance(exc, CatalogError):
                raise
            raise CatalogError(f"{name}:{number}: bad string ({exc})") from exc
    finish()
    return entries


def _unquote(quoted: str) -> str:
    value = ast.literal_eval(quoted)  # the C escapes of .po strings (\n, \t, \", \\) are Python's too
    if not isinstance(value, str):
        raise ValueError(f"not a string: {quoted[:40]}")
    return value


def _extend(entry: Entry, target: tuple[str, int], more: str) -> None:
    kind, slot = target
    if kind == "msgstr":
        entry.msgstr[slot] += more
    else:
        setattr(entry, kind, (getattr(entry, kind) or "") + more)


def mo_bytes(entries: list[Entry], name: str = "<po>") -> bytes:
    """The GNU ``.mo`` image of the translated, non-fuzzy entries (and the header, msgid "")."""
    header = next((e for e in entries if e.msgid == "" and e.msgctxt is None), None)
    if header is not None:
        charset = re.search(r"charset=([\w-]+)", header.msgstr.get(0, ""))
        if charset and charset.group(1).lower().replace("_", "-") not in ("utf-8", "utf8"):
            raise CatalogError(f"{name}: charset {charset.group(1)}, only UTF-8 is supported")
    pairs: dict[bytes, bytes] = {}
    for e in entries:
        if e.msgid != "" and (e.fuzzy or not e.translated):
            continue
        key = e.msgid if e.msgid_plural is None else f"{e.msgid}\0{e.msgid_plural}"
        if e.msgctxt is not None:
            key = f"{e.msgctxt}\x04{key}"
        value = "\0".join(e.msgstr[i] for i in sorted(e.msgstr))
        if e is header:  # as msgfmt does: a .mo does not change when only the extraction date did
            value = "".join(line for line in value.splitlines(True) if not line.startswith("POT-Creation-Date:"))
        pairs[key.encode()] = value.encode()
    keys = sorted(pairs)
    count = len(keys)
    originals_at = 7 * 4
    translations_at = originals_at + count * 8
    data_at = translations_at + count * 8
    table_o, table_t, blob = [], [], b""
    for key in keys:
        table_o.append((len(key), data_at + len(blob)))
        blob += key + b"\0"
    for key in keys:
        value = pairs[key]
        table_t.append((len(value), data_at + len(blob)))
        blob += value + b"\0"
    head = struct.pack("<7I", _MAGIC, 0, count, originals_at, translations_at, 0, data_at)
    tables = b"".join(struct.pack("<2I", *pair) for pair in table_o + table_t)
    return head + tables + blob


def compile_file(po: Path, *, force: bool = False) -> bool:
    """Write ``po``'s ``.mo`` beside it if it is missing or older; True when it was written.

    Written to a temporary file and renamed, so processes starting side by side never read half a file.
    """
    mo = po.with_suffix(".mo")
    if not force and mo.exists() and mo.stat().st_mtime_ns >= po.stat().st_mtime_ns:
        return False
    image = mo_bytes(parse(po.read_text(encoding="utf-8"), str(po)), str(po))
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".mo", dir=po.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(image)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from the image's unprivileged user
        os.replace(tmp, mo)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def compile_all(root: Path = LOCALE_DIR, *, force: bool = False) -> list[Path]:
    """Compile every ``<root>/<lang>/LC_MESSAGES/*.po``; the ``.mo`` files written."""
    return [po.with_suffix(".mo") for po in sorted(root.glob("*/LC_MESSAGES/*.po")) if compile_file(po, force=force)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.catalogs", description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=LOCALE_DIR, help="the locale folder (default: ./locale)")
    parser.add_argument("--force", action="store_true", help="rewrite every .mo, even when newer than its .po")
    args = parser.parse_args(argv)
    try:
        written = compile_all(args.root, force=args.force)
    except (CatalogError, OSError) as exc:
        print(f"catalogs: {exc}", file=sys.stderr)
        return 1
    for mo in written:
        print(f"compiled {mo}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
