"""Fixtures of the knowledge-base tests: the packaged USE model, a real Chroma server, API fakes.

The Chroma server is the stack's real server process (token auth on) on a scratch
directory, shared by the session; each test gets its own collection prefix. If the server
cannot start, every Chroma test fails (never skips): Chroma is the default store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from knowledge.retrieval import ChromaServer, ChromaStore, MemoryStore, PineconeStore, UsemEmbedder
from tests.knowledge.fakes import FakeServer, pinecone_server

# Nothing in these tests may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chroma: needs the real Chroma server (fails, never skips, without it)")


@pytest.fixture(scope="session")
def usem() -> UsemEmbedder:
    return UsemEmbedder().load()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path_factory.mktemp("chroma"))
    try:
        server.start(timeout_s=30)
    except Exception as exc:  # any reason at all: the default store must be testable here
        pytest.fail(f"the Chroma server could not start: {exc!r}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def chroma_store(chroma_server: ChromaServer) -> ChromaStore:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    return ChromaStore(chroma_server.host, chroma_server.port, prefix=prefix, token=chroma_server.token)


@pytest.fixture
def pinecone_fake() -> Iterator[FakeServer]:
    server = pinecone_server().start()
    yield server
    server.stop()


@pytest.fixture(params=["memory", pytest.param("chroma", marks=pytest.mark.chroma), "pinecone"])
def any_store(request: pytest.FixtureRequest) -> Iterator[MemoryStore | ChromaStore | PineconeStore]:
    """Each store behind the same contract (Pinecone through its SDK against the local fake)."""
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "chroma":
        yield request.getfixturevalue("chroma_store")
    else:
        fake: FakeServer = request.getfixturevalue("pinecone_fake")
        store = PineconeStore("pc-test-key", fake.url)
        yield store
        store.close()
