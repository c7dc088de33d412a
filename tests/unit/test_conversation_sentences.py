"""Tests for aipbx.text.sentences: cutting streamed LLM text into speakable pieces."""

from __future__ import annotations

import random

import pytest

from aipbx.text.sentences import SentenceSplitter, split_sentences


def stream(text: str, cuts: list[int], splitter: SentenceSplitter | None = None) -> list[str]:
    """Push ``text`` in deltas cut at ``cuts``, then flush."""
    splitter = splitter or SentenceSplitter()
    bounds = [0, *sorted(cuts), len(text)]
    pieces = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        pieces += splitter.push(text[start:end])
    return pieces + splitter.flush()


def words(text: str) -> list[str]:
    """Deltas as a chat model sends them: one word with its leading space."""
    return [i for i, ch in enumerate(text) if ch == " "]


STREAMED = [
    "We open at 10 a.m. on weekdays. Prices start at 3.5 dollars! Do you have a loyalty card? Call us "
    "e.g. tomorrow, or i.e. soon.",
    '"We are closed today." He said so. (Really.) Yes.',
    "안녕하세요. 김 사장님은 지금 통화하실 수 없습니다. 무엇을 도와드릴까요? 감사합니다! 좋은 하루 보내세요",
]


@pytest.mark.parametrize("text", STREAMED, ids=["en", "quotes", "ko"])
def test_streaming_at_random_cuts_gives_the_pieces_of_the_whole_text(text: str) -> None:
    whole = stream(text, [])
    rng = random.Random(20240611)

    for _ in range(300):
        cuts = rng.sample(range(1, len(text)), rng.randint(1, min(40, len(text) - 1)))
        assert stream(text, cuts) == whole, cuts
    assert " ".join(whole).split() == text.split()
    assert len(whole) >= 4


def test_english_sentences_and_abbreviations() -> None:
    text = "We open at 10 a.m. on weekdays. Prices start at 3.5 dollars! Is that ok? See e.g. our site. Thanks."

    assert split_sentences(text) == [
        "We open at 10 a.m. on weekdays.",
        "Prices start at 3.5 dollars!",
        "Is that ok?",
        "See e.g. our site.",
        "Thanks.",
    ]


def test_korean_endings_cut() -> None:
    text = "안녕하세요. 지금은 통화가 어렵습니다. 무엇을 도와드릴까요? 네, 감사합니다! 곧 연락드릴게요."

    assert split_sentences(text) == [
        "안녕하세요.",
        "지금은 통화가 어렵습니다.",
        "무엇을 도와드릴까요?",
        "네, 감사합니다!",
        "곧 연락드릴게요.",
    ]


def test_a_sentence_is_cut_only_once_the_space_after_it_arrived() -> None:
    splitter = SentenceSplitter()

    assert splitter.push("It costs 3.") == []
    assert splitter.push("5 dollars.") == []
    assert splitter.push(" We open at 10 a.") == ["It costs 3.5 dollars."]
    assert splitter.push("m. ") == []
    assert splitter.push("Bye. ") == ["We open at 10 a.m. Bye."]


def test_the_first_piece_may_be_a_clause() -> None:
    text = "Thanks for calling us today, we open at nine, and close at five. See you, then."

    pieces = stream(text, words(text))

    assert pieces == ["Thanks for calling us today,", "we open at nine, and close at five.", "See you, then."]


def test_a_short_first_clause_is_not_cut() -> None:
    text = "Yes, we open at nine. Bye."

    assert stream(text, words(text)) == ["Yes, we open at nine.", "Bye."]


def test_the_clause_rule_respects_its_minimum() -> None:
    text = "Sure thing, we open at nine."

    assert stream(text, words(text), SentenceSplitter(first_clause_min_chars=10)) == ["Sure thing,", "we open at nine."]
    assert stream(text, words(text), SentenceSplitter(first_clause_min_chars=11)) == [text]


def test_a_run_on_is_cut_at_a_space_before_the_limit() -> None:
    text = " ".join(f"word{i}" for i in range(80))  # ~550 characters, no punctuation

    pieces = stream(text, words(text))

    assert len(pieces) >= 3
    assert all(len(piece) <= 220 for piece in pieces)
    assert " ".join(pieces) == text  # cut between words only


def test_a_run_on_without_spaces_is_cut_at_the_limit() -> None:
    assert SentenceSplitter().push("x" * 500) == ["x" * 220, "x" * 220]


def test_flush_returns_the_rest_once() -> None:
    splitter = SentenceSplitter()

    assert splitter.push("We open at nine. We close") == ["We open at nine."]
    assert splitter.flush() == ["We close"]
    assert splitter.flush() == []
    assert SentenceSplitter().flush() == []


def test_split_sentences_never_cuts_clauses() -> None:
    assert split_sentences("Thanks for calling us today, we open at nine.") == [
        "Thanks for calling us today, we open at nine."
    ]
    assert split_sentences("") == []


@pytest.mark.parametrize("text", ["We have three rooms. Call us tomorrow.", "I play the piano. Call us tomorrow."])
def test_a_word_that_ends_like_an_abbreviation_still_ends_a_sentence(text: str) -> None:
    assert len(split_sentences(text)) == 2


@pytest.mark.parametrize("text", ["오늘 빵은 다 팔렸어요. 내일 오세요.", "예약은 필요 없어요. 그냥 오세요."])
def test_korean_words_ending_in_da_or_yo_do_not_cut_a_sentence(text: str) -> None:
    assert split_sentences(text) == [s + "." for s in text.rstrip(".").split(". ")]
