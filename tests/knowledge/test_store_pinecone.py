"""PineconeStore through the official SDK, pointed at a local fake of the data-plane REST endpoints.

The SDK keeps an explicit ``http://`` host as given (and warns only for
non-loopback plaintext hosts), so the real client code is exercised end to end.
The shared store contract runs on it in ``test_stores.py``; this module checks
what goes over the wire.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from knowledge.retrieval import BadInput, Item, OwnerIsolationError, PineconeStore, RetrievalError, owner_key
from tests.knowledge.fakes import FakeServer


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_requests_use_the_owner_namespace_filter_and_credentials(pinecone_fake: FakeServer) -> None:
    # given
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a loopback http host must not even warn
        store = PineconeStore("pc-key", pinecone_fake.url, batch_size=2)
    namespace = owner_key("user_1004")
    # when
    store.upsert("user_1004", [Item(f"c{i}", unit(1, i, 0), f"chunk {i}", {"doc": "faq"}) for i in range(3)])
    hits = store.query("user_1004", unit(1, 0, 0), top_k=2)
    store.delete("user_1004", ["c0"])
    count = store.count("user_1004")
    store.clear("user_1004")
    # then
    upserts = [r for r in pinecone_fake.requests if r.path == "/vectors/upsert"]
    assert [len(r.body["vectors"]) for r in upserts] == [2, 1]
    assert {r.body["namespace"] for r in upserts} == {namespace}
    assert upserts[0].body["vectors"][0]["metadata"] == {"doc": "faq", "owner": "user_1004", "text": "chunk 0"}
    (query,) = [r for r in pinecone_fake.requests if r.path == "/query"]
    assert query.body["namespace"] == namespace
    assert query.body["filter"] == {"owner": {"$eq": "user_1004"}}
    assert query.body["topK"] == 2 and query.body["includeMetadata"] is True
    deletes = [r.body for r in pinecone_fake.requests if r.path == "/vectors/delete"]
    assert deletes == [{"namespace": namespace, "ids": ["c0"]}, {"namespace": namespace, "deleteAll": True}]
    assert all(r.headers["Api-Key"] == "pc-key" for r in pinecone_fake.requests)
    assert all("X-Pinecone-Api-Version" in r.headers for r in pinecone_fake.requests)
    assert [(h.id, h.text) for h in hits] == [("c0", "chunk 0"), ("c1", "chunk 1")]
    assert "text" not in hits[0].metadata and hits[0].metadata["owner"] == "user_1004"
    assert count == 2


def test_a_match_of_another_owner_is_withheld(pinecone_fake: FakeServer) -> None:
    # given: a server that ignores namespaces and filters (a bug on the other side)
    store = PineconeStore("pc-key", pinecone_fake.url)
    store.upsert("bob", [Item("x", unit(1, 0), "bob's secret")])
    store.upsert("alice", [Item("y", unit(0, 1), "alice's")])
    pinecone_fake.options["ignore_scoping"] = True
    # then
    with pytest.raises(OwnerIsolationError):
        store.query("alice", unit(1, 0), top_k=2)


def test_clearing_an_unknown_namespace_is_fine(pinecone_fake: FakeServer) -> None:
    PineconeStore("pc-key", pinecone_fake.url).clear("nobody")


def test_bad_request_is_bad_input_and_server_error_is_retryable(pinecone_fake: FakeServer) -> None:
    store = PineconeStore("pc-key", pinecone_fake.url)
    pinecone_fake.fail_next.append((400, {"code": 3, "message": "Vector dimension 2 does not match 3"}))
    with pytest.raises(BadInput):
        store.upsert("alice", [Item("x", unit(1, 0), "x")])
    pinecone_fake.fail_next.append((403, {"code": 7, "message": "forbidden"}))
    with pytest.raises(RetrievalError) as caught:
        store.count("alice")
    assert not caught.value.retryable


def test_unreachable_host_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    from pinecone._internal import http_client

    from knowledge.retrieval.chroma_server import free_port

    # The REST data plane always retries connection errors (3 times, backoff from 0.25 s);
    # the SDK's own seam for its backoff sleeps keeps this test fast.
    monkeypatch.setattr(http_client, "_retry_sleep", lambda seconds: None)
    store = PineconeStore("pc-key", f"http://127.0.0.1:{free_port()}", timeout_s=0.5)
    with pytest.raises(RetrievalError) as caught:
        store.query("alice", unit(1, 0), top_k=1)
    assert caught.value.retryable
