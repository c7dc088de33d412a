"""ChromaStore and ChromaServer against a real ``chroma run`` process."""

from __future__ import annotations

import stat
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings

from knowledge.retrieval import (
    BadInput,
    ChromaServer,
    ChromaStore,
    Item,
    OwnerIsolationError,
    RetrievalError,
    owner_key,
)
from knowledge.retrieval.chroma_server import free_port

pytestmark = pytest.mark.chroma


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def raw_client(server: ChromaServer) -> chromadb.ClientAPI:
    return chromadb.HttpClient(host=server.host, port=server.port, settings=Settings(anonymized_telemetry=False))


def test_one_cosine_collection_per_owner_recording_the_owner(
    chroma_server: ChromaServer, chroma_store: ChromaStore
) -> None:
    # when
    chroma_store.upsert("alice", [Item("a", unit(1, 0), "hello")])
    chroma_store.upsert("bob", [Item("a", unit(0, 1), "hi")])
    # then
    client = raw_client(chroma_server)
    for owner in ("alice", "bob"):
        collection = client.get_collection(owner_key(owner, chroma_store.prefix))
        assert collection.metadata["owner"] == owner
        assert collection.configuration_json["hnsw"]["space"] == "cosine"
        assert collection.count() == 1


def test_a_collection_recording_another_owner_is_refused(chroma_server: ChromaServer) -> None:
    # given: a collection under alice's name that says it belongs to mallory (a tampered store)
    store = ChromaStore(chroma_server.host, chroma_server.port, prefix="tamper")
    raw_client(chroma_server).create_collection(
        owner_key("alice", "tamper"),
        metadata={"owner": "mallory"},
        configuration={"hnsw": {"space": "cosine"}},
        embedding_function=None,
    )
    # then
    with pytest.raises(OwnerIsolationError):
        store.query("alice", unit(1, 0), top_k=3)
    with pytest.raises(OwnerIsolationError):
        store.upsert("alice", [Item("a", unit(1, 0), "hello")])


def test_an_item_of_another_owner_inside_a_collection_is_withheld(
    chroma_server: ChromaServer, chroma_store: ChromaStore
) -> None:
    # given: someone wrote bob's item straight into alice's collection
    chroma_store.upsert("alice", [Item("a", unit(1, 0), "alice's")])
    collection = raw_client(chroma_server).get_collection(owner_key("alice", chroma_store.prefix))
    collection.upsert(ids=["intruder"], embeddings=[unit(1, 0.1)], documents=["bob's"], metadatas=[{"owner": "bob"}])
    # then
    with pytest.raises(OwnerIsolationError):
        chroma_store.query("alice", unit(1, 0), top_k=3)


def test_wrong_dimension_is_bad_input(chroma_store: ChromaStore) -> None:
    chroma_store.upsert("alice", [Item("a", unit(1, 0, 0), "three")])
    with pytest.raises(BadInput):
        chroma_store.upsert("alice", [Item("b", unit(1, 0), "two")])
    with pytest.raises(BadInput):
        chroma_store.query("alice", unit(1, 0), top_k=1)


def test_a_collection_cleared_by_another_process_is_looked_up_again(chroma_server: ChromaServer) -> None:
    # given: two stores (two processes in production) share one owner's collection
    first = ChromaStore(chroma_server.host, chroma_server.port, prefix="stale")
    second = ChromaStore(chroma_server.host, chroma_server.port, prefix="stale")
    first.upsert("alice", [Item("a", unit(1, 0), "old")])
    assert second.count("alice") == 1
    # when
    first.clear("alice")
    # then: the second store's cached handle is dead, yet it answers correctly
    assert second.count("alice") == 0
    assert second.query("alice", unit(1, 0), top_k=1) == []
    second.upsert("alice", [Item("b", unit(0, 1), "new")])
    assert first.query("alice", unit(0, 1), top_k=1)[0].text == "new"


def test_unreachable_server_is_a_retryable_error() -> None:
    store = ChromaStore("127.0.0.1", free_port(), timeout_s=1.0)
    with pytest.raises(RetrievalError) as caught:
        store.query("alice", unit(1, 0), top_k=1)
    assert caught.value.retryable


def test_a_second_server_on_the_same_directory_is_refused(chroma_server: ChromaServer) -> None:
    with pytest.raises(RetrievalError, match="already served") as caught:
        ChromaServer(chroma_server.data_dir).start()
    assert not caught.value.retryable
    assert chroma_server.running


def test_data_survives_a_server_restart(tmp_path: Path) -> None:
    with ChromaServer(tmp_path / "db") as server:
        ChromaStore(server.host, server.port).upsert("alice", [Item("a", unit(1, 0), "kept")])
    assert not server.running
    with ChromaServer(tmp_path / "db") as server:
        hits = ChromaStore(server.host, server.port).query("alice", unit(1, 0), top_k=1)
    assert [(hit.id, hit.text) for hit in hits] == [("a", "kept")]


def test_a_server_that_exits_reports_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "chroma"
    broken.write_text("#!/bin/sh\necho 'cannot bind: address in use' >&2\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    server = ChromaServer(tmp_path / "db", port=free_port(), executable=broken)
    with pytest.raises(RetrievalError, match="cannot bind"):
        server.start(timeout_s=5)
    assert not server.running
