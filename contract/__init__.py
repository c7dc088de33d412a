"""What the processes say to each other, written down once: the ARI app, the console and its workers.

The ARI app (which never imports Django) publishes call events to a Redis Stream; the console
applies them to PostgreSQL, and answers help requests on a Redis list the ARI app waits on. This
package is the only place that names those events, their fields and their Redis keys. It imports
nothing but the standard library, so either side may use it:

* :mod:`contract.events`: one frozen dataclass per event type, with the version of its fields, and
  :func:`~contract.events.encode` / :func:`~contract.events.decode` of a stream entry;
* :mod:`contract.keys`: the Redis key builders (the event stream, the HITL reply lists, the
  click-to-call requests);
* :mod:`contract.callbacks`: a click-to-call request the console sends the ARI app;
* :mod:`contract.transfers`: a request to put an AI call through to an operator's phone.
* :mod:`contract.directory`: the extension directory the console publishes and the ARI app follows.
"""

from contract.callbacks import BadRequest, CallbackRequest
from contract.events import (
    EVENT_TYPES,
    BadEvent,
    CallAnswered,
    CallbackStatus,
    CallEnded,
    CallRejected,
    CallStarted,
    CallTranscription,
    ConversationState,
    Envelope,
    Event,
    HitlCancelled,
    HitlRequested,
    HitlSpoken,
    HitlTimeout,
    Latency,
    ReplySpeaking,
    Retrieval,
    Transcript,
    TransferStatus,
    TurnPlayed,
    VoicemailRecorded,
    decode,
    encode,
)
from contract.keys import (
    callback_requests_key,
    dead_letter_stream,
    hitl_reply_key,
    stream_name,
    transfer_requests_key,
)
from contract.transfers import TransferRequest

__all__ = [
    "EVENT_TYPES",
    "BadEvent",
    "BadRequest",
    "CallAnswered",
    "CallbackRequest",
    "CallbackStatus",
    "CallEnded",
    "CallRejected",
    "CallStarted",
    "CallTranscription",
    "ConversationState",
    "Envelope",
    "Event",
    "HitlCancelled",
    "HitlRequested",
    "HitlSpoken",
    "HitlTimeout",
    "Latency",
    "ReplySpeaking",
    "Retrieval",
    "Transcript",
    "TransferRequest",
    "TransferStatus",
    "TurnPlayed",
    "VoicemailRecorded",
    "callback_requests_key",
    "dead_letter_stream",
    "decode",
    "encode",
    "hitl_reply_key",
    "stream_name",
    "transfer_requests_key",
]
