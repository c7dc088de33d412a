"""Template context for every console page: the user's role and presence (shown in the header), and
the texts the console's scripts write into the page, in the page's language."""

from __future__ import annotations

from django.http import HttpRequest

from webconsole.calls import access, labels
from webconsole.calls.models import Presence


def console(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    operator = access.operator_of(user)
    return {
        "console_is_admin": access.is_admin(user),
        "console_presence": operator.status if operator else Presence.OFFLINE,
        "console_presence_choices": Presence.choices,
        "console_js_strings": labels.js_strings(),
    }
