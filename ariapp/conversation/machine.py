"""The call's conversation state machine, as a table.

Theory of operation
    IDLE --answered--> GREETING --speech done--> LISTENING --utterance--> THINKING
    THINKING --first reply audio--> SPEAKING --reply done--> LISTENING
    While GREETING, a confirmed caller onset is a barge-in: our audio stops on the next 20 ms tick,
    the reply being generated is cancelled, what was not played is marked unspoken.
    While SPEAKING, an onset *pauses* our audio on the next tick (as fast as a barge-in) and
    SPEAKING --onset--> PAUSED until the caller's utterance ends: a backchannel ("mm-hm", "okay",
    "네") resumes the reply where it stopped (PAUSED --backchannel--> SPEAKING); anything else is an
    interruption: the reply is cancelled and the utterance answered (PAUSED --interruption--> THINKING).
    While THINKING, the caller starting to talk again means the turn was not over: the reply is
    cancelled and the next utterance is heard as the continuation of the same question.
    A provider failure while THINKING is answered with a polite fallback sentence.
    THINKING --hold--> HOLDING --human reply--> SPEAKING when a person is asked (HITL); THINKING
    --human reply--> SPEAKING when nobody is available (the away message).
    THINKING/HOLDING --voicemail--> VOICEMAIL when nobody answered (away, or the hold timed out) and
    voicemail is on: the reply task says so, asks for a message, beeps and records it; nothing the
    caller says is answered; VOICEMAIL --finished--> ENDED (the AI hangs up after its goodbye).
    Any state but IDLE/VOICEMAIL/ENDED --transfer--> TRANSFERRING when the caller is put through to a
    person (``ariapp.conversation.transfer``): our audio stops, the reply task says so and plays hold
    music; nothing the caller says is answered; TRANSFERRING --transferred--> ENDED (the person has the
    caller) or --human reply--> SPEAKING (nobody answered: the AI says so and goes on).
    An operator listening in who takes the call over: any state but IDLE/ENDED --taken over--> ENDED
    at once (our audio stops on the next tick; the person has the caller).
    Hanging up ends everything from any state.

``step(state, event) -> (state, commands)`` is pure; the orchestrator executes the commands.
Events without an entry for the current state change nothing (e.g. a late "reply done" after a
barge-in already moved us on).
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    IDLE = "idle"
    GREETING = "greeting"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    HOLDING = "holding"  # waiting for a person to answer (hold music, spoken updates)
    PAUSED = "paused"  # the caller spoke over our reply: held until we know whether it was a backchannel
    VOICEMAIL = "voicemail"  # the caller is leaving a message: nothing they say is answered
    TRANSFERRING = "transferring"  # an operator's phone rings / they hear the briefing: hold music
    ENDED = "ended"


class Ev(enum.Enum):
    ANSWERED = "answered"
    SPEECH_DONE = "speech_done"  # our greeting / reply finished playing
    CALLER_ONSET = "caller_onset"  # the caller started talking (echo already ruled out)
    UTTERANCE = "utterance"  # the caller finished a stretch of speech
    REPLY_AUDIO = "reply_audio"  # the first audio of the reply went out
    REPLY_EMPTY = "reply_empty"  # the reply produced nothing to say
    PROVIDER_FAILED = "provider_failed"
    HOLD = "hold"  # a person was asked and will answer: put the caller on hold
    HUMAN_REPLY = "human_reply"  # we speak what the human loop decided (answer, away, timeout)
    HANGUP = "hangup"
    BACKCHANNEL = "backchannel"  # what the caller said over our reply was "mm-hm": go on
    INTERRUPTION = "interruption"  # it was more: stop and answer it (payload: the utterance)
    VOICEMAIL = "voicemail"  # nobody answered: the caller may leave a message
    FINISHED = "finished"  # the conversation is over on our side (after the voicemail's goodbye)
    TRANSFER = "transfer"  # put the caller through to a person (payload: the person's name)
    TRANSFERRED = "transferred"  # the person has the caller: the AI is done
    TAKEN_OVER = "taken_over"  # an operator listening in took the caller: the AI is done, at once


class Cmd(enum.Enum):
    PLAY_GREETING = "play_greeting"
    START_REPLY = "start_reply"
    CANCEL_REPLY = "cancel_reply"  # also stops our audio at once (barge-in)
    KEEP_QUESTION = "keep_question"  # the next utterance continues the cancelled question
    SAY_FALLBACK = "say_fallback"
    PAUSE_REPLY = "pause_reply"  # hold our audio at once (it stays queued)
    RESUME_REPLY = "resume_reply"
    CHECK_BACKCHANNEL = "check_backchannel"  # recognise the utterance; post BACKCHANNEL or INTERRUPTION
    START_TRANSFER = "start_transfer"  # say we put the caller through, then hold music until it settles
    END = "end"


S, E, C = State, Ev, Cmd
TABLE: dict[tuple[State, Ev], tuple[State, tuple[Cmd, ...]]] = {
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
    (S.SPEAKING, E.CALLER_ONSET): (S.PAUSED, (C.PAUSE_REPLY,)),
    (S.PAUSED, E.UTTERANCE): (S.PAUSED, (C.CHECK_BACKCHANNEL,)),
    (S.PAUSED, E.BACKCHANNEL): (S.SPEAKING, (C.RESUME_REPLY,)),
    (S.PAUSED, E.INTERRUPTION): (S.THINKING, (C.CANCEL_REPLY, C.START_REPLY)),
    (S.PAUSED, E.SPEECH_DONE): (S.LISTENING, ()),  # the reply had ended as the caller spoke
    (S.PAUSED, E.PROVIDER_FAILED): (S.SPEAKING, (C.RESUME_REPLY, C.SAY_FALLBACK)),
    (S.SPEAKING, E.UTTERANCE): (S.THINKING, (C.CANCEL_REPLY, C.START_REPLY)),
    (S.SPEAKING, E.PROVIDER_FAILED): (S.SPEAKING, (C.SAY_FALLBACK,)),
    # Human in the loop: the reply task itself plays the hold and then speaks; while HOLDING the
    # caller's speech (or the music's echo) interrupts nothing.
    (S.THINKING, E.HOLD): (S.HOLDING, ()),
    (S.THINKING, E.HUMAN_REPLY): (S.SPEAKING, ()),
    (S.HOLDING, E.HUMAN_REPLY): (S.SPEAKING, ()),
    (S.THINKING, E.VOICEMAIL): (S.VOICEMAIL, ()),
    (S.HOLDING, E.VOICEMAIL): (S.VOICEMAIL, ()),
    (S.VOICEMAIL, E.FINISHED): (S.ENDED, (C.END,)),
}
for _state in (S.GREETING, S.LISTENING, S.THINKING, S.SPEAKING, S.PAUSED, S.HOLDING):
    TABLE[(_state, Ev.TRANSFER)] = (State.TRANSFERRING, (Cmd.CANCEL_REPLY, Cmd.START_TRANSFER))
TABLE[(S.TRANSFERRING, E.HUMAN_REPLY)] = (S.SPEAKING, ())
TABLE[(S.TRANSFERRING, E.TRANSFERRED)] = (S.ENDED, (C.END,))
#: States from which the caller can be put through to a person.
TRANSFERABLE = frozenset(state for (state, event) in TABLE if event is Ev.TRANSFER)
for _state in (*TRANSFERABLE, S.TRANSFERRING, S.VOICEMAIL):  # a message so far is kept
    TABLE[(_state, Ev.TAKEN_OVER)] = (State.ENDED, (Cmd.CANCEL_REPLY, Cmd.END))
for _state in State:
    if _state is not State.ENDED:
        TABLE[(_state, Ev.HANGUP)] = (State.ENDED, (Cmd.CANCEL_REPLY, Cmd.END))


def step(state: State, event: Ev) -> tuple[State, tuple[Cmd, ...]]:
    return TABLE.get((state, event), (state, ()))
