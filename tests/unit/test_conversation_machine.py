"""Tests for ariapp.conversation.machine: the documented (state, event) -> (state, commands) table."""

from __future__ import annotations

import itertools

import pytest

from ariapp.conversation.machine import Cmd, Ev, State, step

S, E, C = State, Ev, Cmd

# The transitions of the module's theory of operation, written out independently of its TABLE.
DOCUMENTED = {
    (S.IDLE, E.ANSWERED): (S.GREETING, (C.PLAY_GREETING,)),
    (S.GREETING, E.SPEECH_DONE): (S.LISTENING, ()),
    (S.GREETING, E.CALLER_ONSET): (S.LISTENING, (C.CANCEL_REPLY,)),
    (S.GREETING, E.UTTERANCE): (S.THINKING, (C.CANCEL_REPLY, C.START_REPLY)),
    (S.LISTENING, E.UTTERANCE): (S.THINKING, (C.START_REPLY,)),
    (S.THINKING, E.REPLY_AUDIO): (S.SPEAKING, ()),
    (S.THINKING, E.REPLY_EMPTY): (S.LISTENING, ()),
    (S.THINKING, E.CALLER_ONSET): (S.LISTENING, (C.CANCEL_REPLY, C.KEEP_QUESTION)),
    (S.THINKING, E.PROVIDER_FAILED): (S.SPEAKING, (C.SAY_FALLBACK,)),
    (S.SPEAKING, E.SPEECH_DONE): (S.LISTENING, ()),
    # the caller talking over our reply pauses it; a backchannel resumes it, anything else ends it
    (S.SPEAKING, E.CALLER_ONSET): (S.PAUSED, (C.PAUSE_REPLY,)),
    (S.PAUSED, E.UTTERANCE): (S.PAUSED, (C.CHECK_BACKCHANNEL,)),
    (S.PAUSED, E.BACKCHANNEL): (S.SPEAKING, (C.RESUME_REPLY,)),
    (S.PAUSED, E.INTERRUPTION): (S.THINKING, (C.CANCEL_REPLY, C.START_REPLY)),
    (S.PAUSED, E.SPEECH_DONE): (S.LISTENING, ()),
    (S.PAUSED, E.PROVIDER_FAILED): (S.SPEAKING, (C.RESUME_REPLY, C.SAY_FALLBACK)),
    (S.SPEAKING, E.UTTERANCE): (S.THINKING, (C.CANCEL_REPLY, C.START_REPLY)),
    (S.SPEAKING, E.PROVIDER_FAILED): (S.SPEAKING, (C.SAY_FALLBACK,)),
    # human in the loop; while HOLDING the caller's speech (or the music's echo) changes nothing
    (S.THINKING, E.HOLD): (S.HOLDING, ()),
    (S.THINKING, E.HUMAN_REPLY): (S.SPEAKING, ()),
    (S.HOLDING, E.HUMAN_REPLY): (S.SPEAKING, ()),
    # nobody answered: the caller leaves a message, nothing they say is answered, then we hang up
    (S.THINKING, E.VOICEMAIL): (S.VOICEMAIL, ()),
    (S.HOLDING, E.VOICEMAIL): (S.VOICEMAIL, ()),
    (S.VOICEMAIL, E.FINISHED): (S.ENDED, (C.END,)),
    # put through to a person: from any talking state, never while a voicemail is left
    **{
        (state, E.TRANSFER): (S.TRANSFERRING, (C.CANCEL_REPLY, C.START_TRANSFER))
        for state in (S.GREETING, S.LISTENING, S.THINKING, S.SPEAKING, S.PAUSED, S.HOLDING)
    },
    (S.TRANSFERRING, E.TRANSFERRED): (S.ENDED, (C.END,)),
    (S.TRANSFERRING, E.HUMAN_REPLY): (S.SPEAKING, ()),
    # an operator listening in takes the caller: the AI stops at once, whatever it was doing
    **{
        (state, E.TAKEN_OVER): (S.ENDED, (C.CANCEL_REPLY, C.END))
        for state in (S.GREETING, S.LISTENING, S.THINKING, S.SPEAKING, S.PAUSED, S.HOLDING)
        + (S.TRANSFERRING, S.VOICEMAIL)
    },
}
LIVE = [state for state in State if state is not State.ENDED]
UNLISTED = [
    (state, event)
    for state, event in itertools.product(State, Ev)
    if (state, event) not in DOCUMENTED and not (event is Ev.HANGUP and state is not State.ENDED)
]


@pytest.mark.parametrize(("state", "event"), list(DOCUMENTED), ids=lambda v: v.name)
def test_documented_transition(state: State, event: Ev) -> None:
    assert step(state, event) == DOCUMENTED[(state, event)]


@pytest.mark.parametrize("state", LIVE, ids=lambda v: v.name)
def test_hangup_ends_every_live_state_and_cancels_the_reply(state: State) -> None:
    assert step(state, Ev.HANGUP) == (State.ENDED, (Cmd.CANCEL_REPLY, Cmd.END))


@pytest.mark.parametrize(("state", "event"), UNLISTED, ids=lambda v: v.name)
def test_an_event_without_an_entry_changes_nothing(state: State, event: Ev) -> None:
    assert step(state, event) == (state, ())


def test_the_unlisted_pairs_include_the_late_and_impossible_ones() -> None:
    # a late "speech done" after barge-in, a repeated hangup, and audio for a reply already cancelled
    assert {(S.LISTENING, E.SPEECH_DONE), (S.ENDED, E.HANGUP), (S.LISTENING, E.REPLY_AUDIO)} <= set(UNLISTED)
    assert len(UNLISTED) + len(DOCUMENTED) + len(LIVE) == len(State) * len(Ev)


def test_caller_onset_over_the_greeting_is_a_barge_in() -> None:
    new_state, commands = step(S.GREETING, Ev.CALLER_ONSET)

    assert new_state is State.LISTENING
    assert Cmd.CANCEL_REPLY in commands
    assert Cmd.KEEP_QUESTION not in commands


def test_caller_onset_over_a_reply_pauses_it_at_once_and_decides_when_the_caller_stops() -> None:
    assert step(S.SPEAKING, E.CALLER_ONSET) == (S.PAUSED, (C.PAUSE_REPLY,))
    assert step(S.PAUSED, E.CALLER_ONSET) == (S.PAUSED, ())  # still the same stretch of speech
    assert step(S.PAUSED, E.UTTERANCE) == (S.PAUSED, (C.CHECK_BACKCHANNEL,))


def test_caller_onset_while_thinking_keeps_the_question() -> None:
    assert step(S.THINKING, E.CALLER_ONSET) == (S.LISTENING, (C.CANCEL_REPLY, C.KEEP_QUESTION))


def test_caller_onset_while_listening_does_nothing() -> None:
    assert step(S.LISTENING, E.CALLER_ONSET) == (S.LISTENING, ())


def test_a_whole_call() -> None:
    # given the events of a call: greeting, question, reply, a backchannel, an interruption, failure, hang-up
    events = [
        E.ANSWERED,
        E.SPEECH_DONE,
        E.UTTERANCE,
        E.REPLY_AUDIO,
        E.CALLER_ONSET,
        E.UTTERANCE,
        E.BACKCHANNEL,
        E.CALLER_ONSET,
        E.UTTERANCE,
        E.INTERRUPTION,
        E.SPEECH_DONE,
        E.PROVIDER_FAILED,
        E.SPEECH_DONE,
        E.HANGUP,
        E.UTTERANCE,
    ]

    # when
    state, trace = State.IDLE, []
    for event in events:
        state, commands = step(state, event)
        trace.append((state, commands))

    # then
    assert trace == [
        (S.GREETING, (C.PLAY_GREETING,)),
        (S.LISTENING, ()),
        (S.THINKING, (C.START_REPLY,)),
        (S.SPEAKING, ()),
        (S.PAUSED, (C.PAUSE_REPLY,)),
        (S.PAUSED, (C.CHECK_BACKCHANNEL,)),
        (S.SPEAKING, (C.RESUME_REPLY,)),  # "mm-hm": the reply goes on
        (S.PAUSED, (C.PAUSE_REPLY,)),
        (S.PAUSED, (C.CHECK_BACKCHANNEL,)),
        (S.THINKING, (C.CANCEL_REPLY, C.START_REPLY)),  # a real interruption is answered
        (S.THINKING, ()),  # the interrupted reply's late "done" is ignored
        (S.SPEAKING, (C.SAY_FALLBACK,)),
        (S.LISTENING, ()),
        (S.ENDED, (C.CANCEL_REPLY, C.END)),
        (S.ENDED, ()),
    ]
