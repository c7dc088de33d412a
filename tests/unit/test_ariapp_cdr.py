"""Tests for ariapp.cdr: exactly one CDR line per call, across restarts and crashes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ariapp.cdr import CallRecord, CdrWriter, iso, utcnow_iso


def record(call_id: str = "1764081097.11", **fields: object) -> CallRecord:
    now = datetime.now(UTC)
    values: dict = {
        "caller": "1001",
        "callee": "1002",
        "start": iso(now - timedelta(seconds=30)),
        "answer": iso(now - timedelta(seconds=25)),
        "end": iso(now),
    }
    values.update(fields)
    return CallRecord(call_id=call_id, **values)


def cdr_lines(cdr_dir: Path) -> list[dict]:
    lines = []
    for path in sorted(cdr_dir.glob("cdr-*.jsonl")):
        lines += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines


def today_file(cdr_dir: Path) -> Path:
    return cdr_dir / f"cdr-{datetime.now(UTC).date().isoformat()}.jsonl"


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "cdr", tmp_path / "state"


def test_creates_its_directories(dirs: tuple[Path, Path]) -> None:
    cdr_dir, state_dir = dirs

    CdrWriter(cdr_dir, state_dir)

    assert cdr_dir.is_dir()
    assert (state_dir / "calls").is_dir()


def test_writing_twice_gives_one_line(dirs: tuple[Path, Path]) -> None:
    writer = CdrWriter(*dirs)
    call = record()

    assert writer.write(call) is True
    assert writer.write(call) is False

    assert [line["call_id"] for line in cdr_lines(dirs[0])] == [call.call_id]
    assert writer.written(call.call_id)


def test_a_restarted_writer_refuses_an_id_already_written(dirs: tuple[Path, Path]) -> None:
    # given a line written by the previous run
    CdrWriter(*dirs).write(record())

    # when the app restarts and tries to finish the same call again
    again = CdrWriter(*dirs)

    # then
    assert again.written("1764081097.11")
    assert again.write(record()) is False
    assert len(cdr_lines(dirs[0])) == 1


def test_ids_in_yesterdays_file_are_remembered(dirs: tuple[Path, Path]) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    CdrWriter(*dirs).write(record(end=iso(yesterday), start=iso(yesterday), answer=None))

    assert CdrWriter(*dirs).write(record(end=iso(yesterday), start=iso(yesterday), answer=None)) is False


def test_journal_then_pending_returns_the_record(dirs: tuple[Path, Path]) -> None:
    # given a call journaled by a run that then crashed
    call = record(end=None, answer=None, ai_handled=True, legs=["1764081097.12"])
    CdrWriter(*dirs).journal(call)

    # when the app restarts
    pending = CdrWriter(*dirs).pending()

    # then the whole record comes back, legs included
    assert pending == [call]


def test_journal_is_replaced_not_appended(dirs: tuple[Path, Path]) -> None:
    writer = CdrWriter(*dirs)
    call = record(end=None, answer=None)
    writer.journal(call)
    call.answer = utcnow_iso()
    call.answered_by = "1002"

    writer.journal(call)

    assert [p.name for p in (dirs[1] / "calls").iterdir()] == ["1764081097.11.json"]
    assert writer.pending()[0].answered_by == "1002"


def test_after_write_nothing_is_pending(dirs: tuple[Path, Path]) -> None:
    writer = CdrWriter(*dirs)
    call = record()
    writer.journal(call)

    writer.write(call)

    assert writer.pending() == []
    assert CdrWriter(*dirs).pending() == []
    assert list((dirs[1] / "calls").iterdir()) == []


def test_crash_between_append_and_journal_removal_is_not_pending(dirs: tuple[Path, Path]) -> None:
    # given a line was appended but the journal survived (crash right after the fsync)
    writer = CdrWriter(*dirs)
    call = record()
    writer.journal(call)
    journal = dirs[1] / "calls" / f"{call.call_id}.json"
    saved = journal.read_text()
    writer.write(call)
    journal.write_text(saved)

    # when the app restarts
    pending = CdrWriter(*dirs).pending()

    # then the call is not finished a second time and its stale journal is cleaned up
    assert pending == []
    assert not journal.exists()
    assert len(cdr_lines(dirs[0])) == 1


def test_torn_last_line_does_not_crash_start_up(dirs: tuple[Path, Path]) -> None:
    cdr_dir, _ = dirs
    CdrWriter(*dirs).write(record("a"))
    with today_file(cdr_dir).open("a", encoding="utf-8") as handle:
        handle.write('{"call_id": "b", "caller": "10')

    writer = CdrWriter(*dirs)

    assert writer.written("a")
    assert not writer.written("b")


def test_line_torn_inside_a_multibyte_character_does_not_crash_start_up(dirs: tuple[Path, Path]) -> None:
    cdr_dir, _ = dirs
    CdrWriter(*dirs).write(record("a"))
    line = json.dumps({"call_id": "b", "caller": "영업팀"}, ensure_ascii=False).encode("utf-8")
    with today_file(cdr_dir).open("ab") as handle:
        handle.write(line[: line.index("영".encode()) + 1])

    assert CdrWriter(*dirs).written("a")


def test_call_finished_after_a_torn_line_gets_a_readable_line(dirs: tuple[Path, Path]) -> None:
    # given a crash while appending call b's line: a fragment in the file, b's journal still there
    cdr_dir, _ = dirs
    call = record("b")
    CdrWriter(*dirs).journal(call)
    today_file(cdr_dir).write_text('{"call_id": "b", "caller": "10', encoding="utf-8")

    # when the restarted app finishes the pending call
    writer = CdrWriter(*dirs)
    [pending] = writer.pending()
    writer.write(pending)

    # then b has a readable CDR line
    assert [line["call_id"] for line in cdr_lines(cdr_dir)] == ["b"]


@pytest.mark.parametrize("content", ["{not json", '{"call_id": "x", "unknown_field": 1}', "[]", "null", "\udcff"])
def test_unreadable_journal_files_are_skipped(dirs: tuple[Path, Path], content: str) -> None:
    # given one good journal and one broken one
    writer = CdrWriter(*dirs)
    good = record("good", end=None)
    writer.journal(good)
    (dirs[1] / "calls" / "broken.json").write_bytes(content.encode("utf-8", "surrogateescape"))

    # when / then
    assert writer.pending() == [good]


def test_duration_and_billsec() -> None:
    call = record(
        start="2026-11-25T14:31:37.123+00:00",
        answer="2026-11-25T14:31:42.380+00:00",
        end="2026-11-25T14:32:10.734+00:00",
    )

    cdr = call.to_cdr()

    assert cdr["duration"] == pytest.approx(33.611)
    assert cdr["billsec"] == pytest.approx(28.354)
    assert "legs" not in cdr


def test_unanswered_call_has_zero_billsec() -> None:
    call = record(start="2026-11-25T14:31:37.000+00:00", answer=None, end="2026-11-25T14:31:47.500+00:00")

    assert call.to_cdr()["duration"] == pytest.approx(10.5)
    assert call.to_cdr()["billsec"] == 0.0


def test_durations_are_never_negative_or_missing() -> None:
    backwards = record(start="2026-11-25T14:31:40+00:00", answer=None, end="2026-11-25T14:31:37+00:00")
    open_call = record(end=None)

    assert backwards.duration() == 0.0
    assert open_call.duration() == 0.0
    assert open_call.billsec() == 0.0


def test_written_line_has_the_cdr_fields(dirs: tuple[Path, Path]) -> None:
    call = record(
        start="2026-11-25T14:31:37.123+00:00",
        answer="2026-11-25T14:31:42.380+00:00",
        end="2026-11-25T14:32:10.734+00:00",
        answered_by="1002",
        hangup_by="callee",
        termination_reason="callee_hangup",
        hangup_cause=16,
        legs=["x"],
    )

    CdrWriter(*dirs).write(call)

    [line] = cdr_lines(dirs[0])
    assert line["call_id"] == "1764081097.11"
    assert (line["caller"], line["callee"], line["answered_by"]) == ("1001", "1002", "1002")
    assert (line["termination_reason"], line["hangup_cause"]) == ("callee_hangup", 16)
    assert (line["duration"], line["billsec"]) == (33.611, 28.354)
    assert "legs" not in line


def test_cdr_file_is_named_after_the_utc_end_date(dirs: tuple[Path, Path]) -> None:
    # 23:30 in New York on the 25th is 04:30 UTC on the 26th
    call = record(start="2026-11-25T23:29:00-05:00", answer=None, end="2026-11-25T23:30:00-05:00")

    CdrWriter(*dirs).write(call)

    assert [p.name for p in dirs[0].iterdir()] == ["cdr-2026-11-26.jsonl"]


def test_lines_of_one_day_share_a_file(dirs: tuple[Path, Path]) -> None:
    writer = CdrWriter(*dirs)

    for call_id in ("a", "b", "c"):
        writer.write(record(call_id, start="2026-11-25T10:00:00+00:00", answer=None, end="2026-11-25T10:01:00+00:00"))

    lines = (dirs[0] / "cdr-2026-11-25.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["call_id"] for line in lines] == ["a", "b", "c"]


def test_record_without_end_goes_to_todays_file(dirs: tuple[Path, Path]) -> None:
    CdrWriter(*dirs).write(record(end=None, answer=None))

    assert today_file(dirs[0]).exists()
