"""Every import parser's work is bounded: no upload can hold the worker (issue 15, item 2)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from knowledge import importing
from knowledge.importing import ImportFailed, parse_file, parse_markdown


def test_headings_keep_their_text_and_lose_only_a_closing_sequence() -> None:
    text = "# Deliveries\n\nA.\n\n## Wi-Fi ##\n\nB.\n\n### C# and F#\n\nC.\n\n#   \n\nD.\n\n#nospace\n"
    assert [(t.heading, t.body) for t in parse_markdown(text)] == [
        ("Deliveries", "A."),
        ("Wi-Fi", "B."),
        ("C# and F#", "C."),
        ("", "D."),
        ("", "#nospace"),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "# a" + " " * 19_990 + "x",  # blanks before a last word: the old expression tried every split of them
        "# " + " \t" * 9_990 + "#x",
        "### " + "# " * 9_990 + "x",
    ],
    ids=["blanks-then-word", "blanks-and-tabs", "hashes"],
)
def test_a_hostile_heading_line_parses_in_well_under_a_second(line: str) -> None:
    started = time.thread_time()  # CPU time of this thread: other processes' load does not count
    (text,) = parse_markdown(line + "\n\nbody\n")
    elapsed = time.thread_time() - started
    assert text.body == "body" and text.heading.endswith("x")
    assert elapsed < 0.5, f"{elapsed:.2f} s of CPU"  # generous: milliseconds; the old expression took minutes


@pytest.mark.parametrize("name", ["notes.md", "notes.txt", "faq.csv"])
def test_a_line_over_the_limit_is_refused_with_its_number(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    long = "word " * (importing.MAX_LINE_CHARS // 5 + 1)
    path.write_text(f'question,answer\nq,a\nq2,"{long}"\n' if name.endswith(".csv") else f"fine\n\n{long}\n")
    with pytest.raises(
        ImportFailed,
        match=r"line 3 has \d+ characters, over the 20000-character limit.*"
        r"nothing was imported",
    ):
        parse_file(path)


def test_a_file_with_more_texts_than_the_limit_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(importing, "MAX_TEXTS", 3)
    path = tmp_path / "notes.txt"
    path.write_text("one\n\ntwo\n\nthree\n")
    assert len(parse_file(path)) == 3
    path.write_text("one\n\ntwo\n\nthree\n\nfour\n")
    with pytest.raises(ImportFailed, match="4 texts is over the 3-text limit per file; split the file"):
        parse_file(path)
