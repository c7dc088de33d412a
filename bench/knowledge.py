"""Knowledge-base search latency and embedding throughput (``run_search_bench``).

What is measured, on the default stack (USE multilingual v3 + a Chroma server process):

* Embedding throughput of :class:`UsemEmbedder`: texts per second one at a time
  (a caller's question) and in batches of 256 (indexing).
* Top-3 search latency for one owner as their knowledge base grows to each size:
  ``store`` is ``ChromaStore.query`` with an already embedded question (HTTP round
  trip + HNSW search), ``with_embedding`` is ``Retriever.search`` (question
  embedding on the model thread + store query in a thread + threshold), i.e. what
  a call waits for. Percentiles over ``queries`` real questions.
* For comparison, the exact ``MemoryStore`` at the same sizes, and Chroma's
  recall@3 against it (HNSW is approximate).

Corpus: the first ``real_chunks`` chunks are USE embeddings of synthetic ko/en
sentences; beyond that the stored vectors are random unit vectors (embedding
100k texts would take ~50 s more and does not change a vector search's cost).
The questions are always real embeddings. The output says which is which.

Run alone with ``python -m bench.knowledge [sizes]``; takes ~3 minutes for
1k/10k/100k on 2 cores, most of it Chroma building its index.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.retrieval import ChromaServer, ChromaStore, Item, MemoryStore, Retriever, UsemEmbedder, VectorStore

OWNER = "bench-owner"
TARGET_P95_MS = 20.0

_KO_SUBJECTS = ("영업시간", "주차", "예약", "환불", "배송", "상담료", "휴무일", "결제 방법", "교환", "회의")
_KO_TAILS = (
    "은 {n}시까지입니다.",
    "은 {n}일 이내에 가능합니다.",
    "은 {n}층에서 안내해 드립니다.",
    "에 대해서는 {name} 담당자에게 문의해 주세요.",
    "은 매월 {n}일에 바뀝니다.",
)
_EN_SUBJECTS = ("Delivery", "Parking", "The meeting", "Support", "The refund", "Billing", "The clinic", "Pickup")
_EN_TAILS = ("takes {n} days.", "is on floor {n}.", "is handled by {name}.", "closes at {n} pm.", "costs {n} dollars.")
_NAMES = ("김민수", "이영희", "박철수", "최지우", "정하늘", "Alex", "Jordan", "Sam")
QUESTIONS = (
    "몇 시까지 영업하세요?",
    "주차 가능한가요?",
    "예약은 어떻게 하나요?",
    "환불 받을 수 있어요?",
    "배송 얼마나 걸려요?",
    "상담료가 얼마예요?",
    "언제 쉬세요?",
    "카드 결제 되나요?",
    "담당자가 누구예요?",
    "회의는 몇 층이에요?",
    "How long does delivery take?",
    "Where can I park?",
    "Who handles billing?",
    "When does the clinic close?",
    "How much is the refund?",
    "Is support open today?",
    "What floor is the meeting on?",
    "Can I pick it up?",
)


def synthetic_sentences(count: int) -> list[str]:
    """``count`` distinct short ko/en knowledge sentences."""
    sentences = []
    templates = itertools.cycle(
        [(s, t) for s in _KO_SUBJECTS for t in _KO_TAILS] + [(s, " " + t) for s in _EN_SUBJECTS for t in _EN_TAILS]
    )
    for index in range(count):
        subject, tail = next(templates)
        sentences.append(f"{subject}{tail.format(n=index % 97 + 1, name=_NAMES[index % len(_NAMES)])} (#{index})")
    return sentences


def _stats_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {
        "p50": round(float(np.percentile(ms, 50)), 2),
        "p95": round(float(np.percentile(ms, 95)), 2),
        "p99": round(float(np.percentile(ms, 99)), 2),
        "mean": round(float(ms.mean()), 2),
    }


def embedding_throughput(embedder: UsemEmbedder, singles: int = 200, batched: int = 2000) -> dict[str, Any]:
    """Texts per second embedding one at a time and in batches."""
    texts = synthetic_sentences(batched)
    embedder.embed(texts[:16])  # warm-up
    started = time.perf_counter()
    for text in texts[:singles]:
        embedder.embed([text], purpose="query")
    single_s = time.perf_counter() - started
    started = time.perf_counter()
    embedder.embed(texts)
    batched_s = time.perf_counter() - started
    return {
        "single_texts_per_s": round(singles / single_s, 1),
        "single_ms_per_text": round(1000 * single_s / singles, 3),
        "batched_texts_per_s": round(batched / batched_s, 1),
        "batch_size": embedder.batch_size,
    }


def _random_units(count: int, dimension: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.standard_normal((count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _grow(
    stores: Sequence[VectorStore], start: int, stop: int, real: np.ndarray, texts: list[str], rng: np.random.Generator
) -> dict[str, float]:
    """Add chunks ``start..stop`` to every store; returns seconds spent per store."""
    spent = {type(store).__name__: 0.0 for store in stores}
    for begin in range(start, stop, 5000):
        end = min(begin + 5000, stop)
        vectors = [real[i] if i < len(real) else None for i in range(begin, end)]
        randoms = _random_units(sum(v is None for v in vectors), real.shape[1], rng)
        fill = iter(randoms)
        items = [
            Item(
                f"chunk-{i}",
                vector if vector is not None else next(fill),
                texts[i] if i < len(texts) else f"random chunk {i}",
                {"doc": f"doc-{i // 20}", "chunk_index": i % 20},
            )
            for i, vector in zip(range(begin, end), vectors, strict=True)
        ]
        for store in stores:
            started = time.perf_counter()
            store.upsert(OWNER, items)
            spent[type(store).__name__] += time.perf_counter() - started
    return spent


def _store_latency(store: VectorStore, vectors: np.ndarray, queries: int) -> tuple[dict[str, float], list[list[str]]]:
    for vector in vectors[:5]:
        store.query(OWNER, vector, 3)  # warm-up
    durations, answers = [], []
    for index in range(queries):
        vector = vectors[index % len(vectors)]
        started = time.perf_counter()
        hits = store.query(OWNER, vector, 3)
        durations.append(time.perf_counter() - started)
        if index < len(vectors):
            answers.append([hit.id for hit in hits])
    return _stats_ms(durations), answers


async def _retriever_latency(retriever: Retriever, queries: int) -> dict[str, float]:
    for question in QUESTIONS[:3]:
        await retriever.search(OWNER, question)
    durations = []
    for index in range(queries):
        question = f"{QUESTIONS[index % len(QUESTIONS)]} {index}"  # no two identical questions
        started = time.perf_counter()
        await retriever.search(OWNER, question)
        durations.append(time.perf_counter() - started)
    return _stats_ms(durations)


def run_search_bench(
    sizes: Sequence[int] = (1000, 10000, 100000),
    *,
    queries: int = 300,
    real_chunks: int = 10000,
    compare_memory: bool = True,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    """Measure top-3 search latency per knowledge-base size and embedding throughput.

    Args:
        sizes: Chunk counts of the one owner, measured in increasing order.
        queries: Searches per size and mode.
        real_chunks: How many stored chunks are real USE embeddings (the rest are random unit vectors).
        compare_memory: Also measure the exact MemoryStore and Chroma's recall@3 against it.
        data_dir: Chroma data directory; a temporary one by default.

    Returns:
        A JSON-ready dict (see the module docstring for the meaning of each figure).
    """
    sizes = sorted(sizes)
    rng = np.random.default_rng(7)
    bench_started = started = time.perf_counter()
    embedder = UsemEmbedder()
    embedder.load()
    report: dict[str, Any] = {
        "embedder": {
            "name": embedder.name,
            "dimension": embedder.dimension,
            "load_s": round(time.perf_counter() - started, 2),
        },
        "store": "ChromaStore on the stack's Chroma server process (chromadb's Python server, token auth on; "
        "HNSW, cosine), one collection per owner",
        "query_vectors": "real USE embeddings of ko/en questions",
        "target_p95_ms": TARGET_P95_MS,
    }
    report["embedder"].update(embedding_throughput(embedder))
    n_real = min(real_chunks, sizes[-1])
    texts = synthetic_sentences(n_real)
    started = time.perf_counter()
    real = embedder.embed(texts)
    report["corpus"] = {
        "real_chunks": n_real,
        "real_embedding_s": round(time.perf_counter() - started, 2),
        "note": f"chunks beyond the first {n_real} are random unit vectors, not embeddings of text",
    }
    question_vectors = embedder.embed(list(QUESTIONS), purpose="query")

    with tempfile.TemporaryDirectory(prefix="kb-bench-") as scratch:
        server = ChromaServer(data_dir or Path(scratch) / "chroma").start()
        try:
            chroma = ChromaStore(server.host, server.port, prefix="bench", token=server.token)
            chroma.clear(OWNER)
            memory = MemoryStore()
            stores: list[VectorStore] = [chroma, memory] if compare_memory else [chroma]
            retriever = Retriever(embedder, chroma, top_k=3)
            results: dict[str, Any] = {}
            current = 0
            for size in sizes:
                spent = _grow(stores, current, size, real, texts, rng)
                added, current = size - current, size
                store_ms, chroma_answers = _store_latency(chroma, question_vectors, queries)
                entry: dict[str, Any] = {
                    "count": chroma.count(OWNER),
                    "real_chunks": min(size, n_real),
                    "chroma_insert_per_s": round(added / max(spent["ChromaStore"], 1e-9), 1),
                    "store_ms": store_ms,
                    "with_embedding_ms": asyncio.run(_retriever_latency(retriever, queries)),
                }
                if compare_memory:
                    memory_ms, exact = _store_latency(memory, question_vectors, queries)
                    found = [len(set(a) & set(b)) / 3 for a, b in zip(chroma_answers, exact, strict=True)]
                    entry["memory_store_ms"] = memory_ms
                    entry["chroma_recall_at_3"] = round(float(np.mean(found)), 3)
                entry["meets_target"] = entry["with_embedding_ms"]["p95"] <= TARGET_P95_MS
                results[str(size)] = entry
                print(f"[bench.knowledge] {size}: {json.dumps(entry)}", file=sys.stderr, flush=True)
            report["sizes"] = results
        finally:
            server.stop()
    report["total_s"] = round(time.perf_counter() - bench_started, 1)
    return report


if __name__ == "__main__":
    chosen = tuple(int(arg) for arg in sys.argv[1:]) or (1000, 10000, 100000)
    json.dump(run_search_bench(chosen), sys.stdout, indent=2, ensure_ascii=False)
    print()
