"""A transfer request: the console asks the ARI app to put an AI call through to an operator's phone.

It travels like a click-to-call (:mod:`contract.callbacks`): the console RPUSHes one JSON object onto
``aipbx:<instance>:transfers`` (:func:`contract.keys.transfer_requests_key`) after the commit that
stored the :class:`Transfer` row, and the ARI app BLPOPs it. Progress comes back as
``transfer.status`` events (:class:`contract.events.TransferStatus`) about the transferred call.

Two things make a request: an operator's "take this call" click (live call page, HITL request), and
a caller who asked for a person while an operator with a phone was on duty (the console decides that
when it stores the help request, and answers the AI's hold decision with ``{"kind": "transfer"}``).

The same request, with ``mode``, carries listening in: ``listen`` rings the operator's phone and lets
them hear the AI call (caller and AI) without being heard, and a second request with the same
``transfer_id`` and ``take_over`` bridges them with the caller, the AI falling silent.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from contract.callbacks import _ID, NUMBER, BadRequest, json_object

TRANSFER, LISTEN, TAKE_OVER = "transfer", "listen", "take_over"
MODES = (TRANSFER, LISTEN, TAKE_OVER)


@dataclass(frozen=True)
class TransferRequest:
    """Ring ``operator_ext``; brief the operator; then bridge them with the caller of ``call_id``.

    ``operator`` is the name the AI says to the caller ("Let me put you through to Alice");
    ``question`` what the caller asked for (briefing); ``request_id`` the help request it answers, if
    any; ``requested_at`` seconds since the epoch (an old request is refused as ``expired``);
    ``mode`` ``transfer`` (ring, brief, bridge), ``listen`` (ring, then hear the call unheard) or
    ``take_over`` (the listening operator of ``transfer_id`` takes the caller from the AI).
    """

    transfer_id: str
    call_id: str
    operator_ext: str
    operator: str = ""
    question: str = ""
    request_id: str = ""
    requested_at: float = 0.0
    mode: str = TRANSFER

    def __post_init__(self) -> None:
        if not _ID.match(self.transfer_id) or not _ID.match(self.call_id):
            raise BadRequest(f"bad transfer or call id: {self.transfer_id!r}, {self.call_id!r}")
        if self.request_id and not _ID.match(self.request_id):
            raise BadRequest(f"bad request_id: {self.request_id!r}")
        if not NUMBER.match(self.operator_ext) or self.operator_ext.startswith("+"):
            raise BadRequest(f"operator_ext is not an extension: {self.operator_ext!r}")
        if len(self.operator) > 80 or len(self.question) > 1000:
            raise BadRequest("operator name or question too long")
        if self.mode not in MODES:
            raise BadRequest(f"mode is not one of {', '.join(MODES)}: {self.mode!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> TransferRequest:
        """Raises:
        BadRequest: not JSON, not an object, missing or malformed fields."""
        data = json_object(raw)
        try:
            return cls(
                transfer_id=str(data["transfer_id"]),
                call_id=str(data["call_id"]),
                operator_ext=str(data["operator_ext"]),
                operator=str(data.get("operator") or ""),
                question=str(data.get("question") or ""),
                request_id=str(data.get("request_id") or ""),
                requested_at=float(data.get("requested_at") or 0.0),
                mode=str(data.get("mode") or TRANSFER),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, BadRequest):
                raise
            raise BadRequest(f"missing or malformed field: {exc}") from exc
