from __future__ import annotations

from engine.services import cases
from tests.conftest import ADMIN, T0


def test_create_and_fire_round_trip(sessions, publish_workflow) -> None:
    publish_workflow("repair_ticket.yaml")
    with sessions() as s, s.begin():
        created = cases.create_case(
            s,
            "repair_ticket",
            {"customer": "C", "device_serial": "S", "fault": "F", "priority": "normal"},
            actor=ADMIN,
            now=T0,
        )
    with sessions() as s, s.begin():
        out = cases.fire(
            s, created.case.id, "contact", {"at": "2025-09-30T02:00:00Z"}, actor=ADMIN, now=T0
        )
    assert out.case.state == "remote_diagnosis"
    with sessions() as s, s.begin():
        assert [e.seq for e in cases.history(s, created.case.id)] == [1, 2]
