"""``{% hitl_waiting %}``: the number of help requests waiting for the user (the nav badge)."""

from __future__ import annotations

from typing import Any

from django import template

from webconsole.hitl.queries import waiting_count

register = template.Library()


@register.simple_tag(takes_context=True)
def hitl_waiting(context: dict[str, Any]) -> int:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 0
    return waiting_count(user)
