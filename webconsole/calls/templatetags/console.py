"""``{% load console %}``: the labels of call codes (:mod:`webconsole.calls.labels`) as filters.

``{{ turn.speaker|speaker }}``, ``{{ call.conversation_state|conversation_state }}``,
``{{ call.termination_reason|outcome }}``.
"""

from __future__ import annotations

from django import template

from webconsole.calls import labels

register = template.Library()


@register.filter
def speaker(code: str) -> str:
    return labels.label(labels.SPEAKERS, code)


@register.filter
def conversation_state(code: str) -> str:
    return labels.label(labels.CONVERSATION_STATES, code)


@register.filter
def outcome(code: str) -> str:
    return labels.label(labels.OUTCOMES, code)
