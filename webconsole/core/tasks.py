"""Core Celery tasks."""

from __future__ import annotations

from celery import shared_task


@shared_task(soft_time_limit=10, time_limit=20)
def ping_task() -> str:
    """Answer "pong": proves a worker is consuming and results come back."""
    return "pong"
