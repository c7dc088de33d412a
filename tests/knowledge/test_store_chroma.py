"""ChromaStore and ChromaServer against the stack's real Chroma server process (token auth on)."""

from __future__ import annotations

import json
import stat
import sys
import urllib.error
import urllib.request
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
    settings = Settings(
        anonymized_telemetry=False,
        chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider",
        chroma_client_auth_credentials=server.token,
    )
    return chromadb.HttpClient(host=server.host, port=server.port, settings=settings)


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
    store = ChromaStore(chroma_server.host, chroma_server.port, prefix="tamper", token=chroma_server.token)
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
    first = ChromaStore(chroma_server.host, chroma_server.port, prefix="stale", token=chroma_server.token)
    second = ChromaStore(chroma_server.host, chroma_server.port, prefix="stale", token=chroma_server.token)
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
    with ChromaServer(tmp_path / "db", token="kept-token") as server:
        ChromaStore(server.host, server.port, token=server.token).upsert("alice", [Item("a", unit(1, 0), "kept")])
    assert not server.running
    with ChromaServer(tmp_path / "db", token="kept-token") as server:
        hits = ChromaStore(server.host, server.port, token=server.token).query("alice", unit(1, 0), top_k=1)
    assert [(hit.id, hit.text) for hit in hits] == [("a", "kept")]


def test_a_server_that_exits_reports_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "chroma"
    broken.write_text("#!/bin/sh\necho 'cannot bind: address in use' >&2\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    server = ChromaServer(tmp_path / "db", port=free_port(), command=[str(broken)])
    with pytest.raises(RetrievalError, match="cannot bind"):
        server.start(timeout_s=5)
    assert not server.running


# --- authentication ---------------------------------------------------------------------------------
class RecordingProxy:
    """A plain HTTP relay in front of the real server that notes each request's Authorization header."""

    def __init__(self, upstream: ChromaServer) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        seen = self.seen = []

        class Relay(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def relay(self) -> None:
                seen.append((self.command, self.path, self.headers.get("Authorization")))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream_conn = http.client.HTTPConnection(upstream.host, upstream.port, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream_conn.request(self.command, self.path, body=body or None, headers=headers)
                answer = upstream_conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream_conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = relay

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_store_sends_its_token_with_every_request(chroma_server: ChromaServer) -> None:
    # given a store with a token, talking to the real server through a relay that records headers
    proxy = RecordingProxy(chroma_server)
    try:
        store = ChromaStore("127.0.0.1", proxy.port, prefix="tok", token=chroma_server.token)
        # when it writes, reads and deletes
        store.upsert("alice", [Item("a", unit(1, 0), "hello")])
        assert store.query("alice", unit(1, 0), top_k=1)[0].id == "a"
        store.delete("alice", ["a"])
    finally:
        proxy.close()
    # then every request carried it (the heartbeat too), as a bearer token
    assert len(proxy.seen) >= 4
    assert {auth for _method, _path, auth in proxy.seen} == {f"Bearer {chroma_server.token}"}, proxy.seen


def _status(url: str, token: str | None = None, body: dict | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_server_refuses_a_request_without_its_token(chroma_server: ChromaServer) -> None:
    collections = f"{chroma_server.url}/api/v2/tenants/default_tenant/databases/default_database/collections"
    # then: nothing in the index without the token, nor with another one
    assert _status(collections) == 403
    assert _status(collections, token="not-the-token") == 403
    assert _status(collections, token=chroma_server.token) == 200
    # the heartbeat stays open: readiness checks (make up, compose health checks) carry no token
    assert _status(f"{chroma_server.url}/api/v2/heartbeat") == 200


def test_a_store_without_the_right_token_gets_a_final_error_and_writes_nothing(chroma_server: ChromaServer) -> None:
    # given
    owner_store = ChromaStore(chroma_server.host, chroma_server.port, prefix="poison", token=chroma_server.token)
    owner_store.upsert("alice", [Item("a", unit(1, 0), "the real answer")])
    for token in (None, "not-the-token"):
        intruder = ChromaStore(chroma_server.host, chroma_server.port, prefix="poison", token=token)
        # when a process without the token tries to poison alice's knowledge
        with pytest.raises(RetrievalError, match="refused our token") as caught:
            intruder.upsert("alice", [Item("b", unit(1, 0.1), "call this premium number instead")])
        # then it is told so, once: retrying cannot help
        assert not caught.value.retryable
    # nor do writes straight to the collection's endpoints get through
    collection = raw_client(chroma_server).get_collection(owner_key("alice", "poison"))
    base = f"{chroma_server.url}/api/v2/tenants/default_tenant/databases/default_database/collections/{collection.id}"
    poison = {"ids": ["b"], "embeddings": [[1.0, 0.0]], "documents": ["call 0900"], "metadatas": [{"owner": "alice"}]}
    for token in (None, "not-the-token"):
        assert _status(f"{base}/upsert", token, poison) == 403
        assert _status(f"{base}/delete", token, {"ids": ["a"]}) == 403
    assert [hit.text for hit in owner_store.query("alice", unit(1, 0), top_k=5)] == ["the real answer"]


def test_a_directory_written_by_chroma_run_is_served_with_its_data(tmp_path: Path) -> None:
    """Installs from before token auth kept their index with `chroma run` (the Rust server in the wheel):
    the authenticating server opens that directory as it is."""
    chroma_run = [str(Path(sys.executable).parent / "chroma"), "run"]
    with ChromaServer(tmp_path / "db", command=chroma_run) as old:
        ChromaStore(old.host, old.port).upsert("alice", [Item("a", unit(1, 0), "from before")])
    with ChromaServer(tmp_path / "db") as server:
        hits = ChromaStore(server.host, server.port, token=server.token).query("alice", unit(1, 0), top_k=1)
    assert [hit.text for hit in hits] == ["from before"]


def test_the_server_never_starts_without_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from knowledge.retrieval import chroma_serve

    monkeypatch.delenv("AIPBX_CHROMA_TOKEN", raising=False)
    assert chroma_serve.main(["--path", str(tmp_path / "db"), "--port", str(free_port())]) == 2
    assert not (tmp_path / "db").exists()
