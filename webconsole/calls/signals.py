"""Tell a user's open sockets to check again who may see what (``webconsole.calls.consumers``).

After a logout, a change of an operator's extensions or role, or a user switched off, the sockets
of that user get ``console.recheck`` once the change is committed. The consumers also check on a
timer, so a message the channel layer loses delays the cut-off by seconds, never for good.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import m2m_changed, post_save

from webconsole.calls import live
from webconsole.calls.models import Extension, Operator


def _after_commit(user_ids: list[int]) -> None:
    if user_ids:
        transaction.on_commit(lambda: live.recheck_users(user_ids))


def _logged_out(sender: Any, request: Any = None, user: Any = None, **_kw: Any) -> None:
    if user is not None and user.pk is not None:
        _after_commit([user.pk])


def _extensions_changed(sender: Any, instance: Any, action: str, reverse: bool, pk_set: set | None, **_kw: Any) -> None:
    if isinstance(instance, Operator):
        if action.startswith("post_"):
            _after_commit([instance.user_id])
    elif isinstance(instance, Extension):  # extension.operators.add/remove/clear: the operators changed
        if action == "pre_clear":  # after the clear nobody is left to name
            _after_commit(list(instance.operators.values_list("user_id", flat=True)))
        elif action in ("post_add", "post_remove") and pk_set:
            _after_commit(list(Operator.objects.filter(pk__in=pk_set).values_list("user_id", flat=True)))


def _operator_saved(sender: Any, instance: Operator, created: bool, **_kw: Any) -> None:
    if not created:
        _after_commit([instance.user_id])


def _user_saved(sender: Any, instance: Any, created: bool, **_kw: Any) -> None:
    if not created:
        _after_commit([instance.pk])


def connect() -> None:
    user_logged_out.connect(_logged_out, dispatch_uid="calls-recheck-logout")
    m2m_changed.connect(_extensions_changed, sender=Operator.extensions.through, dispatch_uid="calls-recheck-m2m")
    post_save.connect(_operator_saved, sender=Operator, dispatch_uid="calls-recheck-operator")
    post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="calls-recheck-user")
