"""The Redis keys shared by the ARI app and the console (one instance = one PBX and its console)."""

from __future__ import annotations


def stream_name(instance: str) -> str:
    """The stream the ARI app appends its call events to, and the console reads."""
    return f"aipbx:{instance}:events"


def dead_letter_stream(stream: str) -> str:
    """Where the console copies entries of ``stream`` it can never apply (with the reason)."""
    return f"{stream}:dead"


def hitl_reply_key(instance: str, request_id: str) -> str:
    """The list the console RPUSHes its replies to help request ``request_id`` onto; the ARI app BLPOPs it."""
    return f"aipbx:{instance}:hitl:{request_id}"


def callback_requests_key(instance: str) -> str:
    """The list the console RPUSHes click-to-call requests onto (:class:`contract.callbacks.CallbackRequest`);
    the ARI app BLPOPs it and answers with ``callback.status`` events on the stream."""
    return f"aipbx:{instance}:callbacks"


def transfer_requests_key(instance: str) -> str:
    """The list the console RPUSHes transfer requests onto (:class:`contract.transfers.TransferRequest`);
    the ARI app BLPOPs it and answers with ``transfer.status`` events on the stream."""
    return f"aipbx:{instance}:transfers"
