"""Core Celery tasks."""

from __future__ import annotations

from celery import shared_task


@shared_task
def ping_task() -> str:
    """Answer "pong": proves a worker is consuming and results come back."""
    return "pong"
