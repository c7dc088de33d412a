"""What one conversation is configured with: who it answers for (:class:`ConversationConfig`) and
every wait it makes (:class:`Timing`), in one place instead of literals across the stages.

The defaults are the product's; tests shorten them (their media clock runs ten times faster than
a phone's), and the console's per-extension settings fill in the rest of the config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ariapp.conversation.confirm import CONFIRM_AT
from ariapp.conversation.transfer import MUSIC_CHUNK_S, TRANSFER_WAIT_S
from ariapp.conversation.turns import BACKCHANNEL_MAX_S, HOLD_S, UNSURE_AFTER_S

__all__ = ["ConversationConfig", "Timing"]


@dataclass(frozen=True, slots=True)
class Timing:
    """Every wait of one conversation, in seconds."""

    #: A reply not yet heard by then gets "One moment, please." first.
    filler_after_s: float = 2.0
    #: The budget for producing a reply (not for playing it); then the polite fallback.
    reply_timeout_s: float = 20.0
    #: More time for a caller whose words stop mid-thought (``turns.should_wait``).
    turn_hold_s: float = HOLD_S
    #: A reply that does not answer starts no sooner after the caller's last sound (``turns.UNSURE_AFTER_S``).
    unsure_after_s: float = UNSURE_AFTER_S
    #: How long the answer waits, once the words are heard, for the end-of-turn model (busy with
    #: other callers' turns); after that the words alone decide.
    turn_model_wait_s: float = 0.2
    #: Longer than this over our reply (counting the silence that ends it) is an interruption
    #: without listening to it: no backchannel takes that long.
    backchannel_max_s: float = BACKCHANNEL_MAX_S
    #: A "transfer" decision whose request never reached the call: then the away path.
    transfer_wait_s: float = TRANSFER_WAIT_S
    #: Hold music is queued this much at a time while an operator's phone rings.
    music_chunk_s: float = MUSIC_CHUNK_S
    #: How long one wait on the console's reply list lasts during a hold (then it is asked again).
    desk_poll_s: float = 5.0
    #: How long a cancelled task (a reply, a guess) gets to end when the call ends.
    stop_grace_s: float = 2.0


@dataclass(frozen=True)
class ConversationConfig:
    owner: str
    owner_key: str  # the extension whose knowledge is searched
    greeting_text: str = ""
    # What callers call the business behind the line ("Smile Tree Dental Clinic"; "" = none): the
    # relevance gate does not take it for a topic the answer has to cover (deciding.py)
    business: str = ""
    language: str = "en-US"
    confirm_at: float = CONFIRM_AT  # "did you mean …?" from this gate probability (confirm.py); 0: never
    # An unsure question heard again expecting the nearest passages' words (deciding.py); False: never
    relisten: bool = True
    # The extension's own hold messages ("" = the language's default, hitl.MESSAGES) and hold music
    # (None = the built-in tune; a function of the media rate and seconds, the volume already applied).
    hold_message: str = ""
    update_message: str = ""
    hold_music: Callable[[int, float], np.ndarray] | None = None
    timing: Timing = field(default_factory=Timing)

    @property
    def lang(self) -> str:
        return "ko" if self.language.startswith("ko") else "en"
