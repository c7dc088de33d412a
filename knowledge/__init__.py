"""The callee's knowledge base: what the AI assistant may tell a caller, per owner.

``knowledge.retrieval`` is the pure-Python retrieval core (embeddings, vector
stores, chunking, the retriever). It never imports Django, because the ARI app
imports it; the Django side of the knowledge base builds on top of it.
"""
