"""The engine's sentences as codes and values (engine/core/messages.py): the English the API
and the CLI read is what the engine always wrote, an error inside a sentence keeps what a
reader in another language needs, and anything stored that is not a known message is left
to the reader's fallback (its stored text)."""

from __future__ import annotations

import json

import pytest

from engine.core import messages
from engine.core.messages import Message, error_record, from_stored
from engine.errors import ExpressionError, GuardRejected


def test_english_is_the_sentence_the_engine_wrote_before_it_kept_codes() -> None:
    unmapped = Message(
        messages.MIGRATION_STATE_UNMAPPED,
        {"state": "on_hold", "version": 2, "states": ["received", "closed"]},
    )
    assert str(unmapped) == (
        "state 'on_hold' has no counterpart in version 2: add --map-state "
        "on_hold=<one of received, closed>"
    )
    assert str(Message(messages.TIMER_GAVE_UP, {"attempts": 5})) == "gave up after 5 attempts"
    assert str(Message(messages.TIMER_PERMANENT_ERROR)) == "permanent error"
    left = Message(messages.TIMER_STATE_LEFT, {"case_id": 3, "state": "repairing"})
    assert str(left) == "case 3 has left the state this timer belonged to (now 'repairing')"


def test_an_error_inside_a_sentence_keeps_its_code_words_and_hint_only_where_shown() -> None:
    refused = GuardRejected(
        "'remind' cannot be fired in 'received' yet: Not allowed.",
        hint="Do what is missing, then fire it again.",
        reasons=[{"en": "Not allowed.", "zh": "不允许。"}],
        guards=["transitions[0].guard = data.allowed"],
    )
    record = error_record(refused)
    assert record == {
        "code": "guard-rejected",
        "message": "'remind' cannot be fired in 'received' yet: Not allowed.",
        "reasons": [{"en": "Not allowed.", "zh": "不允许。"}],
    }
    assert json.loads(json.dumps(record)) == record  # stored as JSON as it is
    planned = Message(messages.MIGRATION_UNPLANNABLE, {"version": 2, "error": error_record(
        ExpressionError("no such key: x", hint="Declare it."), with_hint=True
    )})  # fmt: skip
    assert str(planned) == (
        "its timers or SLA clocks cannot be planned under version 2: no such key: x (Declare it.)"
    )
    assert error_record(ConnectionError("reset " * 500)) == {
        "code": None,
        "type": "ConnectionError",
        "message": ("reset " * 500)[: messages.ERROR_MAX_CHARS],
    }


@pytest.mark.parametrize(
    "stored",
    [None, "permanent error", {"code": "timer.no-such-code", "params": {}}, {"code": 1}, []],
)
def test_what_is_not_a_known_stored_message_is_left_to_the_reader_s_fallback(
    stored: object,
) -> None:
    assert from_stored(stored) is None


def test_a_stored_message_reads_back_as_it_was_written() -> None:
    written = Message(messages.TIMER_CASE_CLOSED, {"case_id": 4, "status": "cancelled"})
    assert from_stored(json.loads(json.dumps(written.to_dict()))) == written
    with pytest.raises(KeyError):
        Message("no-such-code")
