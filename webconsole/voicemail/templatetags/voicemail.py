"""``{% voicemail_new %}``: the messages of the user's extensions not handled yet (the nav badge)."""

from __future__ import annotations

from typing import Any

from django import template

from webconsole.voicemail.views import visible_voicemails

register = template.Library()


@register.simple_tag(takes_context=True)
def voicemail_new(context: dict[str, Any]) -> int:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 0
    return visible_voicemails(user).filter(handled=False).count()
