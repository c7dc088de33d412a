"""Owner isolation over many random queries: no query ever returns another owner's item.

Three owners hold near-duplicate knowledge bases under the *same* item ids:
the facts differ only in a name or a number, so their embeddings are nearly
identical and a leak would rank at the top. Queries mix real question
embeddings, the exact vectors of another owner's facts (the strongest possible
attempt to pull them out) and random directions.
"""

from __future__ import annotations

import numpy as np
import pytest

from knowledge.retrieval import ChromaStore, Item, MemoryStore, OwnerRequired, UsemEmbedder, VectorStore

OWNERS = {
    "clinic-seoul": {"name": "김민수", "hour": 9, "phone": "1234", "hours": 2, "city": "Seoul"},
    "clinic-busan": {"name": "이영희", "hour": 10, "phone": "5678", "hours": 3, "city": "Busan"},
    "user_1004": {"name": "박철수", "hour": 8, "phone": "9012", "hours": 1, "city": "Daegu"},
}
TEMPLATES = (
    "{name} 원장님의 진료시간은 오전 {hour}시부터 오후 6시까지입니다.",
    "사무실 전화번호는 010-{phone}-0000이고, {name} 원장님께 연결됩니다.",
    "건물 주차장은 {hours}시간까지 무료입니다.",
    "{name} 원장님은 매주 수요일 오후에 휴진합니다.",
    "Our {city} office is on the 5th floor, next to the pharmacy.",
    "Dr. {name} speaks Korean and English.",
    "Parking is free for {hours} hours with a validated ticket.",
    "예약 변경은 진료 {hours}일 전까지 전화로 해 주세요.",
)
QUESTIONS = (
    "진료 몇 시에 시작해요?",
    "전화번호 알려주세요",
    "주차 무료인가요?",
    "수요일에 진료하세요?",
    "Where is the office?",
    "Does the doctor speak English?",
    "How long is parking free?",
    "예약 바꾸고 싶어요",
    "원장님 성함이 어떻게 되세요?",
    "What time do you open?",
)
QUERIES = 500


def texts_of(owner: str) -> list[str]:
    return [template.format(**OWNERS[owner]) for template in TEMPLATES]


def fill(store: VectorStore, usem: UsemEmbedder) -> dict[str, np.ndarray]:
    vectors = {}
    for owner in OWNERS:
        texts = texts_of(owner)
        vectors[owner] = usem.embed(texts)
        pairs = enumerate(zip(vectors[owner], texts, strict=True))
        store.upsert(owner, [Item(f"fact-{i}", vector, text, {"doc": "faq"}) for i, (vector, text) in pairs])
    return vectors


def random_queries(rng: np.random.Generator, vectors: dict[str, np.ndarray], questions: np.ndarray):
    owners = list(OWNERS)
    for _ in range(QUERIES):
        owner = owners[rng.integers(len(owners))]
        kind = rng.integers(3)
        if kind == 0:  # a caller's question, slightly perturbed
            vector = questions[rng.integers(len(questions))] + rng.normal(0, 0.02, questions.shape[1])
        elif kind == 1:  # another owner's exact fact
            other = [o for o in owners if o != owner][rng.integers(len(owners) - 1)]
            vector = vectors[other][rng.integers(len(TEMPLATES))] + rng.normal(0, 0.001, questions.shape[1])
        else:
            vector = rng.standard_normal(questions.shape[1])
        yield owner, vector.astype(np.float32), int(rng.integers(1, 6))


def assert_isolated(store: VectorStore, usem: UsemEmbedder) -> None:
    # given
    vectors = fill(store, usem)
    questions = usem.embed(list(QUESTIONS), purpose="query")
    rng = np.random.default_rng(20240105)
    own_texts = {owner: set(texts_of(owner)) for owner in OWNERS}
    assert not own_texts["clinic-seoul"] & own_texts["clinic-busan"]
    cross, returned = 0, 0
    # when
    for owner, vector, top_k in random_queries(rng, vectors, questions):
        hits = store.query(owner, vector, top_k)
        # then: a full answer, and only from the asking owner
        assert len(hits) == top_k
        returned += len(hits)
        cross += sum(hit.metadata.get("owner") != owner or hit.text not in own_texts[owner] for hit in hits)
    assert cross == 0
    assert returned > QUERIES


def test_memory_store_never_leaks_across_owners(usem: UsemEmbedder) -> None:
    assert_isolated(MemoryStore(), usem)


@pytest.mark.chroma
def test_chroma_store_never_leaks_across_owners(chroma_store: ChromaStore, usem: UsemEmbedder) -> None:
    assert_isolated(chroma_store, usem)


def test_the_closest_item_of_all_owners_is_still_not_returned(usem: UsemEmbedder) -> None:
    # given: bob's only fact is the exact query vector; alice's is unrelated
    store = MemoryStore()
    question = usem.embed(["주차 무료인가요?"], purpose="query")[0]
    store.upsert("bob", [Item("same-id", question, "bob: parking is free")])
    store.upsert("alice", [Item("same-id", usem.embed(["Dr. Kim speaks English."])[0], "alice: languages")])
    # when
    hits = store.query("alice", question, top_k=3)
    # then
    assert [hit.text for hit in hits] == ["alice: languages"]


def test_a_store_holding_a_foreign_item_withholds_the_whole_result(usem: UsemEmbedder) -> None:
    from knowledge.retrieval import OwnerIsolationError

    store = MemoryStore()
    store.upsert("alice", [Item("a", usem.embed(["hello"])[0], "alice's")])
    store._shelves["alice"].metadatas[0]["owner"] = "bob"  # simulate a bug that mixed owners
    with pytest.raises(OwnerIsolationError):
        store.query("alice", usem.embed(["hello"])[0], top_k=1)


@pytest.mark.parametrize("owner", [None, "", " \t"])
def test_a_query_without_owner_is_rejected_before_any_search(owner: str | None) -> None:
    store = MemoryStore()
    store.upsert("alice", [Item("a", np.ones(4, dtype=np.float32), "x")])
    with pytest.raises(OwnerRequired):
        store.query(owner, np.ones(4), top_k=1)  # type: ignore[arg-type]
