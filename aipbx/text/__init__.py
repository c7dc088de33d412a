"""Text to and from a language model: the caller's words sanitised into a prompt (``prompt``), a reply
checked before anyone hears it (``guard``) and cut into sentences (``sentences``).

The ARI app's conversation and the console's HITL polish of an operator's answer use the same checks.
"""
