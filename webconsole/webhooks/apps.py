from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webconsole.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The knowledge app tells of what it learned by a signal: it never imports the console.
        from knowledge.signals import knowledge_extracted

        knowledge_extracted.connect(_knowledge_extracted, dispatch_uid="webhooks.knowledge_extracted")


def _knowledge_extracted(sender: Any, *, call_id: str, owner: str, items_created: int, **kwargs: Any) -> None:
    from webconsole.webhooks.actions import emit_knowledge_extracted

    emit_knowledge_extracted(call_id, owner, items_created)  # the outbox, in the sender's transaction
