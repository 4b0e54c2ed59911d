"""A migration's replay of the past with transitions that keep a case in its state (no
``dest``, with ``reenter: true`` or not), on SQLite and PostgreSQL: the history records them
with the same from and to state, and a version that still has them must not report them as
a past it would not have allowed, while a version that dropped them must.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.core.machine import Actor, compile_workflow
from engine.core.migration import MigrationPlan, ParamsChoice
from engine.core.replay import fold, reexecute
from engine.services import case_migration, cases
from engine.services.case_migration import CaseMove, MoveOutcome
from engine.services.definitions import get_definition
from tests.conftest import T0, WORKFLOWS
from tests.factories import create_case, fire
from tests.tables import every_row
from tests.workflows import TICKET

HOUR = timedelta(hours=1)
SYSTEM = Actor.system()  # breaches and a loaner's news are the engine's own triggers


def _dry_run(
    sessions: sessionmaker[Session], definition: str, to_version: int, *, now: Any
) -> dict[int, CaseMove]:
    plan = MigrationPlan(
        definition=definition,
        from_version=1,
        to_version=to_version,
        params=ParamsChoice.KEEP,
        reason="test: replay the past against the new version",
    )
    with sessions() as session, session.begin():
        checked = case_migration.check(session, plan)
        batch = case_migration.next_batch(session, checked, after_id=0, limit=100)
    moves = {}
    for case_id in batch:
        with sessions() as session, session.begin():
            moves[case_id] = case_migration.preview_case(session, checked, case_id, now=now)
    return moves


RETITLED = (
    "title: {en: Repair ticket, zh: 维修工单}",
    "title: {en: Repair ticket (retitled), zh: 维修工单（改名）}",
)
# The customer's authorization of remote access no longer exists: a case that recorded one
# went a way this version does not allow.
AUTHORIZE = "  - on authorize_remote_access: remote_diagnosis\n"


def _repair_ticket(sessions: sessionmaker[Session], serial: str) -> int:
    data = {
        "customer": "濮阳市妇幼保健院",
        "device_serial": serial,
        "fault": "监护仪黑屏",
        "priority": "normal",
        "channel": "hotline",
    }
    return create_case(sessions, "repair_ticket", data, version=1).case.id


def test_repair_ticket_stays_are_no_past_a_retitled_version_refuses(
    sessions: sessionmaker[Session], publish_workflow: Callable[[str], int]
) -> None:
    v1 = (WORKFLOWS / "repair_ticket.yaml").read_text("utf-8")
    assert RETITLED[0] in v1 and AUTHORIZE in v1
    assert publish_workflow(v1) == 1
    assert publish_workflow(v1.replace(*RETITLED)) == 2
    # Version 3 drops the authorization: the transition block up to the next one goes.
    start = v1.index(AUTHORIZE)
    end = v1.index("  - on remote_failed:", start)
    # Its payload's field declaration goes with it (a label for no field is an error).
    label = "  authorized_by: {en: Authorised by, zh: 授权人, type: text}\n"
    assert label in v1
    assert publish_workflow((v1[:start] + v1[end:]).replace(label, "")) == 3

    # Stays in remote_diagnosis and awaiting_dispatch (authorization, breaches).
    breached = _repair_ticket(sessions, "MN-PY-0001")
    fire(sessions, breached, "contact", {"at": T0.isoformat()}, now=T0)
    fire(sessions, breached, "authorize_remote_access", {"authorized_by": "李主任"}, now=T0)
    fire(sessions, breached, "record_breach", {"sla": "dispatch"}, now=T0 + HOUR, actor=SYSTEM)
    fire(sessions, breached, "remote_failed", {"reason": "无法远程"}, now=T0 + HOUR)
    fire(
        sessions, breached, "record_breach", {"sla": "resolution"}, now=T0 + 2 * HOUR, actor=SYSTEM
    )
    # Stays in dispatched and repairing (visit confirmed, loaner news from the loaner case).
    loaned = _repair_ticket(sessions, "MN-PY-0002")
    fire(sessions, loaned, "contact", {"at": T0.isoformat()}, now=T0)
    fire(sessions, loaned, "dispatch", {"engineer": "王工"}, now=T0)
    fire(sessions, loaned, "confirm_visit", {"confirmed_with": "李主任"}, now=T0)
    fire(sessions, loaned, "arrive", {}, now=T0 + HOUR)
    diagnosis = {
        "diagnosis": "电源板故障",
        "plan": "更换电源板",
        "cause": "normal_use",
        "warranty_until": (T0 + timedelta(days=365)).isoformat(),
    }
    fire(sessions, loaned, "diagnose", diagnosis, now=T0 + HOUR)
    fire(sessions, loaned, "consent", {"consented_by": "李主任"}, now=T0 + HOUR)
    fire(
        sessions,
        loaned,
        "loaner_delivered",
        {"child_state": "delivered"},
        now=T0 + 2 * HOUR,
        actor=SYSTEM,
    )
    fire(sessions, loaned, "record_breach", {"sla": "resolution"}, now=T0 + 3 * HOUR, actor=SYSTEM)
    for case_id in (breached, loaned):  # the engine's own replay agrees with the stays
        with sessions() as session, session.begin():
            case, history = cases.get_case(session, case_id), cases.history(session, case_id)
            compiled = compile_workflow(get_definition(session, "repair_ticket", 1))
        assert any(e.from_state == e.to_state for e in history[1:])
        assert fold(history) == reexecute(compiled, history, case.params) == (case.state, case.data)
    before = every_row(sessions)

    retitled = _dry_run(sessions, "repair_ticket", 2, now=T0 + 4 * HOUR)
    dropped = _dry_run(sessions, "repair_ticket", 3, now=T0 + 4 * HOUR)

    assert every_row(sessions) == before  # the dry runs wrote nothing
    assert {m.outcome for m in [*retitled.values(), *dropped.values()]} == {MoveOutcome.WOULD_MOVE}
    assert [retitled[i].warnings for i in (breached, loaned)] == [(), ()]
    assert dropped[breached].warnings == (
        "event 3: 'authorize_remote_access' from 'remote_diagnosis' to 'remote_diagnosis' is "
        "not a transition of version 3",
    )
    assert dropped[loaned].warnings == ()


# The service ticket with a chase that re-enters repairing (its timers restart) and a permit
# that stays, both written without dest.
REENTERING = TICKET.replace(
    "  - trigger: permit\n    source: received\n    dest: received\n",
    "  - trigger: permit\n    source: received\n",
).replace(
    "  - trigger: chase\n    source: repairing\n    dest: repairing\n",
    "  - trigger: chase\n    source: repairing\n    reenter: true\n",
)


@pytest.mark.parametrize(
    ("edit", "warned"),
    [
        pytest.param(("Service ticket,", "Service ticket (v2),"), (), id="retitled"),
        pytest.param(
            ("    reenter: true\n", "    dest: repairing\n"), (), id="re-entry-now-a-self-loop"
        ),
        pytest.param(
            ("    source: repairing\n    reenter: true\n", "    source: repairing\n"),
            (),
            id="re-entry-now-a-stay",
        ),
        pytest.param(
            (
                "    source: repairing\n    reenter: true\n",
                "    source: repairing\n    dest: on_hold\n",
            ),
            ("event 4: 'chase' from 'repairing' to 'repairing' is not a transition of version 2",),
            id="re-entry-now-a-move",
        ),
    ],
)
def test_re_entries_and_stays_match_the_same_move_in_any_spelling(
    sessions: sessionmaker[Session],
    publish_workflow: Callable[[str], int],
    edit: tuple[str, str],
    warned: tuple[str, ...],
) -> None:
    assert REENTERING != TICKET and edit[0] in REENTERING
    assert publish_workflow(REENTERING) == 1
    assert publish_workflow(REENTERING.replace(*edit)) == 2
    case_id = create_case(sessions, "service_ticket", {"allowed": False}, version=1).case.id
    fire(sessions, case_id, "permit", now=T0)
    fire(sessions, case_id, "start", now=T0 + HOUR)
    chased = fire(sessions, case_id, "chase", now=T0 + 2 * HOUR, actor=SYSTEM).event
    assert (chased.from_state, chased.to_state) == ("repairing", "repairing")
    assert (chased.context or {}).get("reentered") is True
    with sessions() as session, session.begin():
        case, history = cases.get_case(session, case_id), cases.history(session, case_id)
        compiled = compile_workflow(get_definition(session, "service_ticket", 1))
    assert fold(history) == reexecute(compiled, history, case.params) == (case.state, case.data)
    before = every_row(sessions)

    (move,) = _dry_run(sessions, "service_ticket", 2, now=T0 + 3 * HOUR).values()

    assert every_row(sessions) == before
    assert move.outcome is MoveOutcome.WOULD_MOVE
    assert move.warnings == warned
