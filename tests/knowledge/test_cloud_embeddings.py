"""OpenAI and Google embedders through their official clients, against local fakes of the wire protocol."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from knowledge.retrieval import BackendTimeout, BadInput, GoogleEmbedder, OpenAIEmbedder, RetrievalError
from tests.knowledge.fakes import FakeServer, gemini_server, openai_server, text_vector


@pytest.fixture
def openai_fake() -> Iterator[FakeServer]:
    server = openai_server().start()
    yield server
    server.stop()


@pytest.fixture
def gemini_fake() -> Iterator[FakeServer]:
    server = gemini_server().start()
    yield server
    server.stop()


def expected(texts: list[str], dimension: int) -> np.ndarray:
    rows = np.stack([text_vector(text, dimension) for text in texts])
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


# ---- OpenAI ----------------------------------------------------------------------------------


def test_openai_request_shape_batching_and_order(openai_fake: FakeServer) -> None:
    # given
    embedder = OpenAIEmbedder(
        "sk-test", "text-embedding-3-small", base_url=f"{openai_fake.url}/v1", dimensions=8, batch_size=2, max_retries=0
    )
    texts = ["영업시간이 어떻게 되나요?", "Where is the office?", "주차 돼요?"]
    # when
    vectors = embedder.embed(texts, purpose="query")
    # then: two requests of at most two texts, floats asked for, the key as a bearer token
    assert [r.body["input"] for r in openai_fake.requests] == [texts[:2], texts[2:]]
    for request in openai_fake.requests:
        assert (request.method, request.path) == ("POST", "/v1/embeddings")
        assert request.headers["Authorization"] == "Bearer sk-test"
        assert request.body["model"] == "text-embedding-3-small"
        assert request.body["encoding_format"] == "float"
        assert request.body["dimensions"] == 8
    # the fake answers in reverse order and unnormalised: rows come back in input order, unit length
    assert np.allclose(vectors, expected(texts, 8), atol=1e-6)
    assert embedder.name == "openai/text-embedding-3-small" and embedder.dimension == 8


def test_openai_native_dimension_is_not_sent(openai_fake: FakeServer) -> None:
    embedder = OpenAIEmbedder("k", "text-embedding-3-small", base_url=f"{openai_fake.url}/v1", max_retries=0)
    assert embedder.embed(["hello"]).shape == (1, 1536)
    assert "dimensions" not in openai_fake.requests[0].body


def test_openai_unknown_model_needs_dimensions() -> None:
    with pytest.raises(BadInput, match="dimensions"):
        OpenAIEmbedder("k", "my-local-model", base_url="http://127.0.0.1:1/v1")


async def test_openai_aembed(openai_fake: FakeServer) -> None:
    embedder = OpenAIEmbedder("k", "bge-m3", base_url=f"{openai_fake.url}/v1", dimensions=8, max_retries=0)
    vectors = await embedder.aembed(["비동기"])
    assert np.allclose(vectors, expected(["비동기"], 8), atol=1e-6)


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (401, False), (429, True), (503, True)])
def test_openai_http_errors_are_translated(openai_fake: FakeServer, status: int, retryable: bool) -> None:
    openai_fake.fail_next.append((status, {"error": {"message": "nope", "type": "x", "code": str(status)}}))
    embedder = OpenAIEmbedder("k", base_url=f"{openai_fake.url}/v1", max_retries=0)
    with pytest.raises(RetrievalError, match=str(status)) as caught:
        embedder.embed(["hello"])
    assert caught.value.retryable is retryable and caught.value.backend == "openai"


def test_openai_timeout_is_a_backend_timeout(openai_fake: FakeServer) -> None:
    openai_fake.delay_s = 0.6
    embedder = OpenAIEmbedder("k", base_url=f"{openai_fake.url}/v1", timeout_s=0.2, max_retries=0)
    with pytest.raises(BackendTimeout):
        embedder.embed(["hello"])


# ---- Google ----------------------------------------------------------------------------------


def test_gemini_batch_embed_request_shape(gemini_fake: FakeServer) -> None:
    # given
    embedder = GoogleEmbedder(
        "g-test", "gemini-embedding-001", base_url=gemini_fake.url, output_dimensionality=8, max_retries=0
    )
    # when
    queries = embedder.embed(["환불 되나요?", "Can I get a refund?"], purpose="query")
    documents = embedder.embed(["환불은 7일 이내에 가능합니다."], purpose="document")
    # then
    first, second = gemini_fake.requests
    assert first.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert first.headers["x-goog-api-key"] == "g-test"
    assert [r["content"]["parts"][0]["text"] for r in first.body["requests"]] == ["환불 되나요?", "Can I get a refund?"]
    assert {r["model"] for r in first.body["requests"]} == {"models/gemini-embedding-001"}
    assert {r["taskType"] for r in first.body["requests"]} == {"RETRIEVAL_QUERY"}
    assert {r["outputDimensionality"] for r in first.body["requests"]} == {8}
    assert {r["taskType"] for r in second.body["requests"]} == {"RETRIEVAL_DOCUMENT"}
    assert np.allclose(queries, expected(["환불 되나요?", "Can I get a refund?"], 8), atol=1e-6)
    assert documents.shape == (1, 8) and embedder.name == "google/gemini-embedding-001"


def test_gemini_batches_at_most_batch_size_texts(gemini_fake: FakeServer) -> None:
    embedder = GoogleEmbedder("g", base_url=gemini_fake.url, output_dimensionality=8, batch_size=2, max_retries=0)
    assert embedder.embed(["a", "b", "c", "d", "e"]).shape == (5, 8)
    assert [len(r.body["requests"]) for r in gemini_fake.requests] == [2, 2, 1]


def test_vertex_express_uses_embed_content_per_text(gemini_fake: FakeServer) -> None:
    embedder = GoogleEmbedder("v-key", base_url=gemini_fake.url, output_dimensionality=8, vertexai=True, max_retries=0)
    vectors = embedder.embed(["하나", "two"], purpose="query")
    assert [r.path for r in gemini_fake.requests] == [
        "/v1beta1/publishers/google/models/gemini-embedding-001:embedContent"
    ] * 2
    body = gemini_fake.requests[0].body
    assert body["content"]["parts"][0]["text"] == "하나"
    assert body["embedContentConfig"] == {"taskType": "RETRIEVAL_QUERY", "outputDimensionality": 8}
    assert np.allclose(vectors, expected(["하나", "two"], 8), atol=1e-6)


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (403, False), (500, True)])
def test_gemini_http_errors_are_translated(gemini_fake: FakeServer, status: int, retryable: bool) -> None:
    gemini_fake.fail_next.append((status, {"error": {"code": status, "message": "nope", "status": "X"}}))
    embedder = GoogleEmbedder("g", base_url=gemini_fake.url, output_dimensionality=8, max_retries=0)
    with pytest.raises(RetrievalError, match=str(status)) as caught:
        embedder.embed(["hello"])
    assert caught.value.retryable is retryable and caught.value.backend == "google"


def test_gemini_timeout_is_a_backend_timeout(gemini_fake: FakeServer) -> None:
    gemini_fake.delay_s = 0.8
    embedder = GoogleEmbedder("g", base_url=gemini_fake.url, output_dimensionality=8, timeout_s=0.3, max_retries=0)
    with pytest.raises(BackendTimeout):
        embedder.embed(["hello"])
