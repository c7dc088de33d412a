"""Sentence-aware chunking: sizes, sentence boundaries and overlap, in Korean and English."""

from __future__ import annotations

import re

import pytest

from knowledge.retrieval import chunk_spans, chunk_text

KO_SENTENCES = [
    "영업시간은 평일 오전 9시부터 오후 6시까지입니다.",
    "점심시간은 12시부터 1시까지예요.",
    "주차는 건물 지하 2층에서 2시간 무료입니다!",
    "상담 예약은 전화나 홈페이지에서 하실 수 있습니다.",
    "김민수 대표는 다음 주 월요일부터 수요일까지 출장 중입니다.",
    "환불은 구매 후 7일 이내에 영수증을 지참하시면 가능합니다.",
    "배송은 보통 2~3일 걸리나요?",
    "네, 제주도는 하루 더 걸립니다.",
]
EN_SENTENCES = [
    "The office opens at 9 a.m. on weekdays.",
    "Parking is free for two hours with a validated ticket.",
    "Walk-in patients are welcome on Saturday mornings!",
    "Invoices are emailed on the first business day of each month.",
    "Is there a student discount?",
    "Yes, students get ten percent off with a valid ID.",
]


def sentence_ends(text: str) -> set[int]:
    return {m.end() for m in re.finditer(r"[.!?]", text)}


@pytest.mark.parametrize("sentences", [KO_SENTENCES, EN_SENTENCES], ids=["ko", "en"])
def test_chunks_fit_end_on_sentences_and_overlap_by_whole_sentences(sentences: list[str]) -> None:
    # given
    text = " ".join(sentences * 4)
    size, overlap = 120, 70  # every sentence here is shorter than the overlap
    assert max(map(len, sentences)) < overlap
    # when
    spans = chunk_spans(text, size=size, overlap=overlap)
    # then: every chunk is a slice of the text, fits, and ends where a sentence ends
    assert len(spans) > 3
    ends = sentence_ends(text)
    for start, end in spans:
        assert 0 < end - start <= size
        assert end in ends
        assert text[start:end] == text[start:end].strip()
    # consecutive chunks overlap by at most `overlap` characters, starting on a sentence
    for (_, previous_end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start < previous_end  # these sentences are short enough to repeat one
        assert previous_end - start <= overlap
        assert text[:start].rstrip()[-1] in ".!?"
    # and nothing is lost
    covered = set()
    for start, end in spans:
        covered.update(range(start, end))
    assert all(i in covered for i, char in enumerate(text) if not char.isspace())


def test_default_size_and_overlap_follow_the_design() -> None:
    text = " ".join(KO_SENTENCES * 20)
    spans = chunk_spans(text)
    assert max(end - start for start, end in spans) <= 500
    assert all(prev_end - start <= 50 for (_, prev_end), (start, _) in zip(spans, spans[1:], strict=False))
    assert chunk_text(text) == [text[s:e] for s, e in spans]


def test_short_text_is_one_chunk() -> None:
    assert chunk_text("  안녕하세요. 반갑습니다.  ") == ["안녕하세요. 반갑습니다."]


def test_blank_text_gives_no_chunks() -> None:
    assert chunk_text("") == [] and chunk_text(" \n\t ") == []


def test_a_sentence_longer_than_a_chunk_is_cut_at_words_with_word_overlap() -> None:
    text = " ".join(f"단어{i}" for i in range(60)) + "."
    spans = chunk_spans(text, size=50, overlap=12)
    assert len(spans) > 5
    for start, end in spans:
        assert end - start <= 50
        assert start == 0 or text[start - 1] == " "  # starts on a word
        assert end == len(text) or text[end] == " "  # ends on a word
    for (_, previous_end), (start, _) in zip(spans, spans[1:], strict=False):
        assert 0 < previous_end - start <= 12  # whole words repeated


def test_a_word_longer_than_a_chunk_is_split_hard() -> None:
    assert chunk_text("x" * 25, size=10, overlap=3) == ["x" * 10, "x" * 10, "x" * 5]


def test_line_breaks_are_sentence_boundaries() -> None:
    text = "첫째 줄 제목\n둘째 줄은 조금 더 긴 설명입니다 그리고 계속됩니다\n셋째 줄"
    chunks = chunk_text(text, size=30, overlap=0)
    assert chunks[0] == "첫째 줄 제목\n둘째 줄은 조금 더 긴 설명입니다"
    assert all(len(chunk) <= 30 for chunk in chunks)


def test_korean_sentence_endings_without_punctuation_are_boundaries() -> None:
    # a speech transcript: no punctuation, sentences end in -니다 / -요
    text = "네 알겠습니다 내일 오전 열 시에 다시 전화 드릴게요 그때 예약 날짜를 정하면 됩니다 감사합니다"
    chunks = chunk_text(text, size=40, overlap=0)
    assert chunks[0].endswith("드릴게요")
    assert all(len(chunk) <= 40 for chunk in chunks)


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_invalid_parameters_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_text("text", size=size, overlap=overlap)
