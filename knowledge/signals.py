"""What the knowledge base tells whoever listens, without knowing who (the console's webhooks).

The knowledge app never imports the console (pyproject's import contracts); the console connects
its receivers here when it starts (``webconsole.webhooks.apps``).

``knowledge_extracted``: sent by :func:`knowledge.tasks.run_extraction` *inside* the transaction that
stored a call's facts, with ``call_id``, ``owner`` and ``items_created`` (0 included). A receiver
that writes (the webhooks outbox) therefore commits or rolls back with the facts; one that raises
rolls them back too (Django's ``send``, not ``send_robust``: a lost webhook must not pass silently).
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["knowledge_extracted"]

knowledge_extracted = Signal()
