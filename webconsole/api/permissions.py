"""API permissions: the console's rules (``webconsole.calls.access``) in DRF form.

Querysets are narrowed to the user's extensions first, so an object of another
extension is simply not found. :class:`OwnerVisible` repeats the check on the
object itself (defence in depth) and answers 404 too, never 403, so the API
does not reveal that the object exists.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from webconsole.calls import access


def owner_of(obj: Any) -> str:
    """The extension number an object belongs to (a call's callee, an item's owner)."""
    for field in ("owner", "callee", "number"):
        value = getattr(obj, field, None)
        if isinstance(value, str):
            return value
    raise TypeError(f"{type(obj).__name__} has no owner extension")


class OwnerVisible(BasePermission):
    """The object's extension must be one the user may see; otherwise 404."""

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        if not access.can_see_extension(request.user, owner_of(obj)):
            raise NotFound()
        return True
