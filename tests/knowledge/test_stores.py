"""The VectorStore contract, run on MemoryStore, ChromaStore (real server) and PineconeStore (SDK + fake)."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge.retrieval import BadInput, Item, OwnerRequired, VectorStore


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def items(owner_tag: str = "") -> list[Item]:
    return [
        Item("a", unit(1, 0, 0, 0), f"alpha{owner_tag}", {"doc": "d1", "chunk_index": 0}),
        Item("b", unit(0, 1, 0, 0), f"beta{owner_tag}", {"doc": "d1", "chunk_index": 1}),
        Item("c", unit(1, 1, 0, 0), f"gamma{owner_tag}", {"doc": "d2", "chunk_index": 0}),
    ]


def test_store_satisfies_protocol(any_store: VectorStore) -> None:
    assert isinstance(any_store, VectorStore)


def test_query_returns_best_first_with_cosine_scores_and_metadata(any_store: VectorStore) -> None:
    # given
    any_store.upsert("alice", items())
    # when
    hits = any_store.query("alice", unit(1, 0.1, 0, 0), top_k=2)
    # then
    assert [hit.id for hit in hits] == ["a", "c"]
    assert hits[0].score == pytest.approx(float(unit(1, 0.1, 0, 0) @ unit(1, 0, 0, 0)), abs=1e-4)
    assert hits[0].text == "alpha"
    assert hits[0].metadata["owner"] == "alice"
    assert hits[0].metadata["doc"] == "d1" and hits[0].metadata["chunk_index"] == 0


def test_top_k_larger_than_the_collection_returns_everything(any_store: VectorStore) -> None:
    any_store.upsert("alice", items())
    assert len(any_store.query("alice", unit(0, 0, 1, 1), top_k=10)) == 3


def test_upserting_the_same_id_twice_keeps_one_item_with_the_new_content(any_store: VectorStore) -> None:
    any_store.upsert("alice", items())
    any_store.upsert("alice", [Item("a", unit(0, 0, 1, 0), "alpha v2", {"doc": "d1"})])
    assert any_store.count("alice") == 3
    hits = any_store.query("alice", unit(0, 0, 1, 0), top_k=3)
    assert hits[0].id == "a" and hits[0].text == "alpha v2" and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert sum(hit.id == "a" for hit in hits) == 1


def test_a_repeated_id_within_one_call_keeps_the_last(any_store: VectorStore) -> None:
    any_store.upsert("alice", [Item("x", unit(1, 0, 0, 0), "first"), Item("x", unit(0, 1, 0, 0), "second")])
    assert any_store.count("alice") == 1
    assert any_store.query("alice", unit(0, 1, 0, 0), top_k=1)[0].text == "second"


def test_delete_removes_only_the_named_ids(any_store: VectorStore) -> None:
    any_store.upsert("alice", items())
    any_store.delete("alice", ["a", "does-not-exist"])
    assert any_store.count("alice") == 2
    assert {hit.id for hit in any_store.query("alice", unit(1, 0, 0, 0), top_k=5)} == {"b", "c"}
    any_store.delete("alice", [])
    assert any_store.count("alice") == 2


def test_clear_empties_one_owner_and_leaves_the_others(any_store: VectorStore) -> None:
    any_store.upsert("alice", items())
    any_store.upsert("bob", items(" of bob"))
    any_store.clear("alice")
    any_store.clear("nobody-at-all")
    assert any_store.count("alice") == 0
    assert any_store.query("alice", unit(1, 0, 0, 0), top_k=3) == []
    assert any_store.count("bob") == 3


def test_same_ids_under_two_owners_are_two_items(any_store: VectorStore) -> None:
    any_store.upsert("alice", items())
    any_store.upsert("bob", items(" of bob"))
    any_store.delete("bob", ["a"])
    assert any_store.count("alice") == 3 and any_store.count("bob") == 2
    assert any_store.query("alice", unit(1, 0, 0, 0), top_k=1)[0].text == "alpha"


def test_unknown_owner_has_nothing(any_store: VectorStore) -> None:
    assert any_store.count("stranger") == 0
    assert any_store.query("stranger", unit(1, 0, 0, 0), top_k=3) == []
    any_store.delete("stranger", ["a"])


@pytest.mark.parametrize("owner", [None, "", "   "])
def test_every_call_without_an_owner_is_rejected(any_store: VectorStore, owner: str | None) -> None:
    any_store.upsert("alice", items())
    with pytest.raises(OwnerRequired):
        any_store.query(owner, unit(1, 0, 0, 0), top_k=3)  # type: ignore[arg-type]
    with pytest.raises(OwnerRequired):
        any_store.upsert(owner, items())  # type: ignore[arg-type]
    with pytest.raises(OwnerRequired):
        any_store.delete(owner, ["a"])  # type: ignore[arg-type]
    with pytest.raises(OwnerRequired):
        any_store.count(owner)  # type: ignore[arg-type]
    with pytest.raises(OwnerRequired):
        any_store.clear(owner)  # type: ignore[arg-type]
    assert any_store.count("alice") == 3


def test_metadata_cannot_claim_another_owner_or_reserved_keys(any_store: VectorStore) -> None:
    with pytest.raises(BadInput):
        any_store.upsert("alice", [Item("a", unit(1, 0, 0, 0), "x", {"owner": "bob"})])
    with pytest.raises(BadInput):
        any_store.upsert("alice", [Item("a", unit(1, 0, 0, 0), "x", {"text": "smuggled"})])
    with pytest.raises(BadInput):
        any_store.upsert("alice", [Item("a", unit(1, 0, 0, 0), "x", {"nested": {"a": 1}})])  # type: ignore[dict-item]
    any_store.upsert("alice", [Item("a", unit(1, 0, 0, 0), "x", {"owner": "alice"})])
    assert any_store.count("alice") == 1


def test_bad_vectors_and_top_k_are_rejected(any_store: VectorStore) -> None:
    with pytest.raises(BadInput):
        any_store.upsert("alice", [Item("a", np.zeros(4, dtype=np.float32), "zero")])
    with pytest.raises(BadInput):
        any_store.upsert("alice", [Item("a", unit(1, 0, 0, 0), "x"), Item("b", unit(1, 0, 0), "y")])
    with pytest.raises(BadInput):
        any_store.upsert("alice", [Item("", unit(1, 0, 0, 0), "x")])
    with pytest.raises(BadInput):
        any_store.query("alice", unit(1, 0, 0, 0), top_k=0)
    with pytest.raises(BadInput):
        any_store.query("alice", np.zeros(4), top_k=1)


def test_dimension_mismatch_within_an_owner_is_bad_input() -> None:
    from knowledge.retrieval import MemoryStore

    store = MemoryStore()
    store.upsert("alice", items())
    with pytest.raises(BadInput):
        store.upsert("alice", [Item("z", unit(1, 0, 0), "three dims")])
    with pytest.raises(BadInput):
        store.query("alice", unit(1, 0, 0), top_k=1)
