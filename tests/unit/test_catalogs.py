"""The console's translation catalogs: complete in Korean, and compiled without GNU gettext.

``stack.catalogs`` writes the ``.mo`` files (generated, never committed) for ``make setup``, the test
session and the Docker image; Python's own :mod:`gettext` must read them as GNU ``msgfmt``'s.
"""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stack.catalogs import LOCALE_DIR, CatalogError, compile_all, mo_bytes, parse

KO = LOCALE_DIR / "ko" / "LC_MESSAGES" / "django.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdr]")
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _entries(path: Path) -> list:
    return [e for e in parse(path.read_text(encoding="utf-8"), str(path)) if e.msgid]


def test_every_korean_message_is_translated_and_none_is_fuzzy() -> None:
    entries = _entries(KO)
    assert len(entries) > 300
    assert [e.msgid for e in entries if not e.translated] == []
    assert [e.msgid for e in entries if e.fuzzy] == []
    # Korean has one plural form; a translation keeps every placeholder of its msgid
    assert [e.msgid for e in entries if e.msgid_plural and sorted(e.msgstr) != [0]] == []
    wrong = [e.msgid for e in entries if set(PLACEHOLDER.findall(e.msgid)) != set(PLACEHOLDER.findall(e.msgstr[0]))]
    assert wrong == []


def test_korean_translations_are_korean() -> None:
    # Terms that stay Latin in Korean (the technical ones the console names)
    same = {"AI", "p50 (ms)"}
    entries = _entries(KO)
    assert [e.msgid for e in entries if e.msgid not in same and not HANGUL.search(e.msgstr[0])] == []


def test_the_header_says_korean_utf8_with_one_plural_form() -> None:
    header = parse(KO.read_text(encoding="utf-8"))[0]
    assert header.msgid == "" and not header.fuzzy
    assert "Language: ko\n" in header.msgstr[0] and "charset=UTF-8" in header.msgstr[0]
    assert "Plural-Forms: nplurals=1; plural=0;" in header.msgstr[0]


def test_the_compiled_catalog_reads_as_gnu_gettexts(tmp_path: Path) -> None:
    # given a catalog with a context, a plural, escapes, a fuzzy and an untranslated entry
    po = tmp_path / "xx" / "LC_MESSAGES" / "django.po"
    po.parent.mkdir(parents=True)
    po.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n'
        '"Plural-Forms: nplurals=2; plural=(n != 1);\\n"\n\n'
        'msgid "Save"\nmsgstr "저장"\n\n'
        'msgctxt "verb"\nmsgid "Call"\nmsgstr "전화하기"\n\n'
        'msgid "%(n)d item"\nmsgid_plural "%(n)d items"\nmsgstr[0] "항목 %(n)d개"\nmsgstr[1] "항목들 %(n)d개"\n\n'
        'msgid "Say \\"hi\\"\\n"\nmsgstr ""\n"\\"안녕\\"이라고 "\n"말하기\\n"\n\n'
        '#, fuzzy\nmsgid "Guess"\nmsgstr "추측"\n\n'
        'msgid "Later"\nmsgstr ""\n',
        encoding="utf-8",
    )
    # when it is compiled
    assert compile_all(tmp_path) == [po.with_suffix(".mo")]
    assert compile_all(tmp_path) == []  # up to date: not written again
    # then Python's gettext reads what GNU gettext would
    with po.with_suffix(".mo").open("rb") as fh:
        catalog = gettext.GNUTranslations(fh)
    assert catalog.gettext("Save") == "저장"
    assert catalog.pgettext("verb", "Call") == "전화하기" and catalog.gettext("Call") == "Call"
    assert catalog.ngettext("%(n)d item", "%(n)d items", 1) == "항목 %(n)d개"
    assert catalog.ngettext("%(n)d item", "%(n)d items", 3) == "항목들 %(n)d개"
    assert catalog.gettext('Say "hi"\n') == '"안녕"이라고 말하기\n'
    assert catalog.gettext("Guess") == "Guess" and catalog.gettext("Later") == "Later"
    assert po.with_suffix(".mo").stat().st_mode & 0o444 == 0o444  # readable by the image's own user


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext is not installed here")
def test_the_project_catalogs_compile_to_what_msgfmt_makes(tmp_path: Path) -> None:
    for po in sorted(LOCALE_DIR.glob("*/LC_MESSAGES/*.po")):
        ours = tmp_path / "ours.mo"
        ours.write_bytes(mo_bytes(parse(po.read_text(encoding="utf-8"))))
        theirs = tmp_path / "theirs.mo"
        subprocess.run(["msgfmt", "--check", "-o", str(theirs), str(po)], check=True, capture_output=True)
        with ours.open("rb") as a, theirs.open("rb") as b:
            assert gettext.GNUTranslations(a)._catalog == gettext.GNUTranslations(b)._catalog, po


def test_a_broken_catalog_is_refused_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"bad\.po:2"):
        parse('msgid "a"\nmsgstr "b\n', "bad.po")
    with pytest.raises(CatalogError, match="only UTF-8"):
        mo_bytes(parse('msgid ""\nmsgstr "Content-Type: text/plain; charset=EUC-KR\\n"\n'))
