"""A click-to-call request: the console asks the ARI app to ring an operator's phone, then the caller's.

It travels the way HITL replies do, the other direction of the same Redis: the console RPUSHes one
JSON object onto ``aipbx:<instance>:callbacks`` (:func:`contract.keys.callback_requests_key`) after
the commit that stored it, and the ARI app BLPOPs it. Progress comes back as ``callback.status``
events (:class:`contract.events.CallbackStatus`) on the event stream, about the new call's id.

Both sides validate: the console before it stores the request, the ARI app before it dials (an
entry it cannot use is answered with ``failed``/``invalid`` when it names a call, dropped otherwise).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

#: An extension or a dialled number: digits, an optional leading +.
NUMBER = re.compile(r"^\+?[0-9]{2,20}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class BadRequest(ValueError):
    """A request (call-back, transfer) that can never be carried out (malformed JSON or fields)."""


def json_object(raw: str | bytes) -> dict:
    """A request's JSON object.

    Raises:
        BadRequest: not JSON, or not an object."""
    try:
        data = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest("not an object")
    return data


@dataclass(frozen=True)
class CallbackRequest:
    """Ring ``operator_ext``; when it answers, dial ``number`` and bridge the two.

    ``call_id`` is the new call's id (the console made its row); ``callback_of`` the earlier call it
    follows up; ``callee`` the extension whose caller is called back (the new call belongs to it);
    ``requested_at`` seconds since the epoch (a request older than the ARI app's limit is refused as
    ``expired``: the operator has long stopped waiting).
    """

    callback_id: str
    call_id: str
    operator_ext: str
    number: str
    callee: str
    callback_of: str = ""
    requested_at: float = 0.0

    def __post_init__(self) -> None:
        if not _ID.match(self.callback_id) or not _ID.match(self.call_id):
            raise BadRequest(f"bad callback or call id: {self.callback_id!r}, {self.call_id!r}")
        if self.callback_of and not _ID.match(self.callback_of):
            raise BadRequest(f"bad callback_of: {self.callback_of!r}")
        for name in ("operator_ext", "number"):
            if not NUMBER.match(getattr(self, name)):
                raise BadRequest(f"{name} is not a phone number: {getattr(self, name)!r}")
        if self.callee and not NUMBER.match(self.callee):
            raise BadRequest(f"callee is not an extension: {self.callee!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> CallbackRequest:
        """Raises:
        BadRequest: not JSON, not an object, missing or malformed fields."""
        data = json_object(raw)
        try:
            return cls(
                callback_id=str(data["callback_id"]),
                call_id=str(data["call_id"]),
                operator_ext=str(data["operator_ext"]),
                number=str(data["number"]),
                callee=str(data.get("callee") or ""),
                callback_of=str(data.get("callback_of") or ""),
                requested_at=float(data.get("requested_at") or 0.0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, BadRequest):
                raise
            raise BadRequest(f"missing or malformed field: {exc}") from exc
