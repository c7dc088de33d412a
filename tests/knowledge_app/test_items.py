"""Import, dedup, edit, approve/reject: PostgreSQL is the truth, the index follows after commit."""

from __future__ import annotations

import asyncio
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from knowledge.actions import do_add_item, do_delete_item, do_edit_item, do_set_status, get_retriever
from knowledge.models import ImportJob, KnowledgeItem, KnowledgeVersion, Source, Status
from knowledge.retrieval import RetrievalResult

pytestmark = pytest.mark.django_db(transaction=True)

FAQ_CSV = """question,answer
When is the office open?,"Weekdays from 9 a.m. to 6 p.m., closed on public holidays."
Where do I park?,Visitors park in the basement level B2 of the east building.
"""

GUIDE_MD = """# Deliveries

Parcels are received at the front desk on the first floor until 5 p.m.

## Wi-Fi

The guest Wi-Fi network is AcmeGuest and the password is sunflower42.
"""


def search(owner: str, question: str) -> RetrievalResult:
    return asyncio.run(get_retriever().search(owner, question))


def top_ids(owner: str, question: str) -> list[str]:
    return [p.id for p in search(owner, question).passages]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_csv_and_markdown_are_searchable_by_their_owner_only(tmp_path: Path) -> None:
    # given
    csv_path, md_path = write(tmp_path, "faq.csv", FAQ_CSV), write(tmp_path, "guide.md", GUIDE_MD)
    err = StringIO()
    # when
    call_command("import_knowledge", "--owner", "1002", str(csv_path), str(md_path), stdout=StringIO(), stderr=err)
    # then
    items = KnowledgeItem.objects.filter(owner="1002")
    assert items.count() == 4
    assert set(items.values_list("status", flat=True)) == {Status.APPROVED}
    assert set(items.values_list("source", flat=True)) == {Source.IMPORT}
    # an FAQ row is its answer (what is spoken) with its question beside it (searched, never spoken)
    parking = items.get(question="Where do I park?")
    assert parking.text == "Visitors park in the basement level B2 of the east building."
    # a Markdown paragraph keeps its heading as context, not in what is spoken
    wifi = items.get(text__contains="sunflower42")
    assert wifi.text == "The guest Wi-Fi network is AcmeGuest and the password is sunflower42."
    assert wifi.heading == "Wi-Fi"
    assert top_ids("1002", "Where can I park my car?")[0] == str(parking.pk)
    result = search("1002", "What is the wifi password?")
    assert result.passages[0].id == str(wifi.pk) and result.above_threshold
    assert result.passages[0].metadata["item_id"] == wifi.pk and result.passages[0].text == wifi.text
    # one passage per item, whichever of its entries (text, question, heading) matched best
    assert len({p.id for p in result.passages}) == len(result.passages)
    assert search("1003", "What is the wifi password?").passages == []
    assert list(ImportJob.objects.values_list("status", "done", "total")) == [("done", 2, 2), ("done", 2, 2)]
    assert "2/2" in err.getvalue()


def test_importing_the_same_file_twice_keeps_one_copy(tmp_path: Path) -> None:
    path = write(tmp_path, "faq.csv", FAQ_CSV)
    call_command("import_knowledge", "--owner", "1002", str(path), stdout=StringIO(), stderr=StringIO())
    call_command("import_knowledge", "--owner", "1002", str(path), stdout=StringIO(), stderr=StringIO())
    assert KnowledgeItem.objects.filter(owner="1002").count() == 2
    assert get_retriever().store.count("1002") == 4  # each answer, and its question


def test_an_item_an_earlier_import_stored_with_its_label_is_upgraded_in_place(tmp_path: Path) -> None:
    # given what an earlier version stored for an FAQ row and a Markdown paragraph
    [faq] = do_add_item(
        "1002",
        "Q: Where do I park? A: Visitors park in the basement level B2 of the east building.",
        source=Source.IMPORT,
        status=Status.APPROVED,
    )
    [guide] = do_add_item(
        "1002",
        "Deliveries: Parcels are received at the front desk on the first floor until 5 p.m.",
        source=Source.IMPORT,
        status=Status.APPROVED,
    )
    # when the same files are imported again
    call_command(
        "import_knowledge",
        "--owner",
        "1002",
        str(write(tmp_path, "faq.csv", FAQ_CSV)),
        str(write(tmp_path, "guide.md", GUIDE_MD)),
        stdout=StringIO(),
        stderr=StringIO(),
    )
    # then the old rows now hold the answer and the paragraph alone, with their context beside
    faq_item, guide_item = KnowledgeItem.objects.get(pk=faq.item.pk), KnowledgeItem.objects.get(pk=guide.item.pk)
    assert (faq_item.question, faq_item.text) == (
        "Where do I park?",
        "Visitors park in the basement level B2 of the east building.",
    )
    assert (guide_item.heading, guide_item.text) == (
        "Deliveries",
        "Parcels are received at the front desk on the first floor until 5 p.m.",
    )
    assert KnowledgeItem.objects.filter(owner="1002").count() == 4
    assert "Q:" not in search("1002", "Where can I park?").passages[0].text


def test_near_duplicate_is_merged_and_keywords_extended() -> None:
    [first] = do_add_item("1002", "The team meeting is on Monday at 10 a.m.", keywords=["meeting"], confidence=0.7)
    [again] = do_add_item("1002", "the team meeting is on monday at 10 AM!", keywords=["monday"], confidence=0.9)
    assert not again.created and again.item.pk == first.item.pk
    item = KnowledgeItem.objects.get(pk=first.item.pk)
    assert item.confidence == 0.9 and item.keywords == ["meeting", "monday"]
    # a paraphrase scoring >= 0.92 merges too
    [para] = do_add_item("1002", "The team meeting is held on Monday at 10 a.m.")
    assert not para.created
    # USE scores this 0.98 against the first, but the weekday differs: a different fact
    [tuesday] = do_add_item("1002", "The team meeting is on Tuesday at 10 a.m.")
    assert tuesday.created
    # another owner may hold the same fact
    [other] = do_add_item("1003", "The team meeting is on Monday at 10 a.m.")
    assert other.created


def test_long_text_is_chunked_into_several_items() -> None:
    text = " ".join(f"Fact number {n} is that the storage room {n} holds box {n * 7}." for n in range(60))
    results = do_add_item("1002", text, status=Status.APPROVED)
    assert len(results) > 1 and all(r.created for r in results)
    assert all(len(r.item.text) <= 500 for r in results)


def test_edit_creates_a_version_and_reindexes(tmp_path: Path) -> None:
    [added] = do_add_item("1002", "Lunch break is from noon to 1 p.m.", status=Status.APPROVED)
    item = do_edit_item(added.item.pk, text="The parking garage closes at 11 p.m.", keywords=["parking"])
    assert item.version == 2
    versions = list(KnowledgeVersion.objects.filter(item=item).values_list("version", "text"))
    assert versions == [(1, "Lunch break is from noon to 1 p.m."), (2, "The parking garage closes at 11 p.m.")]
    hit = search("1002", "When does the parking garage close?").passages[0]
    assert hit.id == str(item.pk) and hit.text == "The parking garage closes at 11 p.m."


def test_only_approved_items_are_indexed_reject_and_delete_remove() -> None:
    [pending] = do_add_item("1002", "The printer on the third floor is out of toner.")
    store = get_retriever().store
    assert store.count("1002") == 0
    do_set_status(pending.item.pk, Status.APPROVED)
    assert top_ids("1002", "Is the printer working?") == [str(pending.item.pk)]
    do_set_status(pending.item.pk, Status.REJECTED)
    assert store.count("1002") == 0
    do_set_status(pending.item.pk, Status.APPROVED)
    do_delete_item(pending.item.pk)
    assert store.count("1002") == 0 and not KnowledgeItem.objects.exists()


def test_reindex_rebuilds_from_postgres() -> None:
    do_add_item("1002", "The office cat is called Nabi.", status=Status.APPROVED)
    do_add_item("1002", "Visitors sign in at reception.", status=Status.PENDING)
    store = get_retriever().store
    store.clear("1002")
    out = StringIO()
    call_command("reindex_knowledge", "--owner", "1002", stdout=out)
    assert store.count("1002") == 1 and "1002: 1 approved" in out.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.pdf", b"%PDF-1.4", "unsupported file type"),
        ("notes.txt", b"abc\x00\x01\x02", "binary"),
        ("faq.csv", b"q,a\nhello,world\n", "'question' and 'answer'"),
    ],
)
def test_bad_files_are_refused_and_nothing_is_written(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    good = write(tmp_path, "good.csv", FAQ_CSV)
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(CommandError, match=message):
        call_command("import_knowledge", "--owner", "1002", str(good), str(bad), stdout=StringIO(), stderr=StringIO())
    assert not KnowledgeItem.objects.exists() and not ImportJob.objects.exists()


def test_unknown_owner_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="unknown owner '9999'"):
        call_command(
            "import_knowledge",
            "--owner",
            "9999",
            str(write(tmp_path, "a.txt", "Some fact.")),
            stdout=StringIO(),
            stderr=StringIO(),
        )
    assert not KnowledgeItem.objects.exists()


def test_usage_is_counted() -> None:
    from knowledge.actions import do_record_usage

    [added] = do_add_item("1002", "The printer code is 4711.", status=Status.APPROVED)
    assert do_record_usage([added.item.pk]) == 1 and do_record_usage([added.item.pk, 999999]) == 1
    assert KnowledgeItem.objects.get().usage_count == 2


def test_an_extension_added_in_the_console_can_be_given_knowledge_at_once(tmp_path: Path) -> None:
    from django.conf import settings

    from webconsole.calls.directory import sync_extensions
    from webconsole.calls.models import Extension

    sync_extensions(Path(settings.AIPBX_EXTENSIONS_FILE))
    Extension.objects.create(number="1010", name="Minsu Park", seeded=True)
    out = StringIO()
    call_command("import_knowledge", "--owner", "1010", str(write(tmp_path, "a.txt", "We open at nine.")), stdout=out)
    assert KnowledgeItem.objects.filter(owner="1010").exists(), out.getvalue()
