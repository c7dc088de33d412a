"""Who may see what: operators see the extensions assigned to them, admins see everything.

Every view, API endpoint and websocket consumer asks here; an object outside a user's extensions
is reported as not found (404), so its existence does not leak.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from webconsole.calls.models import Call, Extension, Operator, Role

ALL = None  # "every extension", for admins


def operator_of(user: AbstractBaseUser | AnonymousUser) -> Operator | None:
    if not user.is_authenticated:
        return None
    try:
        return user.operator
    except Operator.DoesNotExist:
        return None


def is_admin(user: AbstractBaseUser | AnonymousUser) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    operator = operator_of(user)
    return operator is not None and operator.role == Role.ADMIN


def visible_extensions(user: AbstractBaseUser | AnonymousUser) -> frozenset[str] | None:
    """The extension numbers ``user`` may see; ``None`` means all (admins); empty for anyone else."""
    if is_admin(user):
        return ALL
    operator = operator_of(user)
    if operator is None:
        return frozenset()
    return frozenset(operator.extensions.values_list("number", flat=True))


def extensions_for(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Extension]:
    allowed = visible_extensions(user)
    if allowed is ALL:
        return Extension.objects.all()
    return Extension.objects.filter(number__in=allowed)


def filter_by_owner(queryset: QuerySet, user: AbstractBaseUser | AnonymousUser, field: str) -> QuerySet:
    """``queryset`` narrowed to rows whose ``field`` (an extension number) ``user`` may see."""
    allowed = visible_extensions(user)
    if allowed is ALL:
        return queryset
    return queryset.filter(**{f"{field}__in": allowed})


def calls_for(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Call]:
    return filter_by_owner(Call.objects.all(), user, "callee")


def can_see_extension(user: AbstractBaseUser | AnonymousUser, number: str) -> bool:
    allowed = visible_extensions(user)
    return allowed is ALL or number in allowed
