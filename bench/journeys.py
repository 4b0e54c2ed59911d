"""The journeys bench/workload.py drives: cases of the bundled workflows from creation to close.

Each journey follows one of the repository's scenarios (named in ``source``): its triggers
in its order, with its payloads and roles and timings like its own, so every step is one a
real integration makes: the hotline logs and contacts, the engineer's app reports the visit,
the ERP issues parts, the customer portal scores the service, a supervisor closes
complaints. ``Due`` steps are the timers the scenario's clock runs into:
the driver fires each through ``timer_firing.fire_due_timer`` at its due instant, and checks
that no other timer of the journey's cases fell due before it (a journey that forgot a timer
fails loudly rather than skipping it).

Times are offsets from :data:`START`, Monday 13 October 2025 08:00 in Shanghai (a plain
working week on cn-workdays, after the National Day holidays). Every round runs the same
journeys at the same instants on new cases; only the device serials and part models change,
so that the repair counter (three repairs of one device mean a replacement, R-REP-07) never
sends a later round down another path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.core.machine import Actor

START = datetime(2025, 10, 13, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai, a Monday

HOTLINE = Actor("hotline", frozenset({"integrator"}))  # L1: logs, contacts, dispatches
ENGINEER = Actor("engineer-app", frozenset({"integrator"}))  # L2 on site, and parts requests
ERP = Actor("erp", frozenset({"integrator"}))  # the parts store
PORTAL = Actor("customer-portal", frozenset({"integrator"}))  # surveys, loaner receipt
SUPERVISOR = Actor("service-manager", frozenset({"supervisor"}))


def at(days: int = 0, hours: int = 0, minutes: int = 0) -> timedelta:
    return timedelta(days=days, hours=hours, minutes=minutes)


def iso(offset: timedelta) -> str:
    return (START + offset).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Create:
    ref: str
    definition: str
    data: Mapping[str, Any]
    at: timedelta
    actor: Actor
    expect: str  # the state it starts in


@dataclass(frozen=True)
class Fire:
    ref: str
    trigger: str
    at: timedelta
    actor: Actor
    expect: str  # the state of ``ref`` after the fire
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Due:
    """The next timer of the journey to fall due: ``timer`` of case ``ref``."""

    ref: str
    timer: str
    expect: str  # the state of ``ref`` after the timer fired


Step = Create | Fire | Due


@dataclass(frozen=True)
class Journey:
    name: str
    source: str  # the scenario it follows
    steps: tuple[Step, ...]
    # Cases the journey's cases spawn, by the name steps use: ref -> definition. The driver
    # finds them among the children of the journey's first case once they exist.
    children: Mapping[str, str] = field(default_factory=dict)


def _warning(sla: str, fraction: str = "0.75") -> str:
    return f"sla:{sla}:sla_warning:{fraction}"


def _breach(sla: str) -> str:
    return f"sla:{sla}:sla_breached:1.0"


# --- repair tickets ------------------------------------------------------------------------------


def ticket_data(serial: str) -> dict[str, Any]:
    """A normal fault reported by phone, the engineer's team in the same city."""
    return {
        "customer": "湛江市第一中学",
        "device_serial": serial,
        "device_model": "DR-2000",
        "fault": "曝光后无图像",
        "priority": "normal",
        "distance_class": "same_city",
        "channel": "hotline",
    }


TICKET_CHILDREN = {"loaner": "loaner", "survey": "satisfaction_survey"}


def repair_with_loaner(serial: str) -> Journey:
    """The full on-site path: a warranty repair that runs past 8 hours (a loaner is spawned,
    delivered and returned), breaches its resolution clock (recorded, escalated to L3), and is
    signed (a survey is spawned), reported and closed."""
    t = "ticket"
    return Journey(
        "repair_with_loaner",
        "workflows/scenarios/repair_loaner_after_8h.yaml",
        (
            Create(t, "repair_ticket", ticket_data(serial), at(), HOTLINE, "logged"),
            Fire(
                t,
                "contact",
                at(minutes=30),
                HOTLINE,
                "remote_diagnosis",
                {"at": iso(at(minutes=30))},
            ),
            Fire(
                t,
                "remote_failed",
                at(minutes=40),
                HOTLINE,
                "awaiting_dispatch",
                {"reason": "探测器无响应"},
            ),
            Fire(t, "dispatch", at(minutes=50), HOTLINE, "dispatched", {"engineer": "陈工"}),
            Fire(
                t,
                "confirm_visit",
                at(hours=1),
                ENGINEER,
                "dispatched",
                {"confirmed_with": "设备科刘老师", "planned_arrival": iso(at(hours=1, minutes=50))},
            ),
            # Arrival counts from the report: 1 h 30 min of its 2 hours are gone at 09:30.
            Due(t, _warning("arrival"), "dispatched"),
            Fire(t, "arrive", at(hours=1, minutes=50), ENGINEER, "on_site"),
            Fire(
                t,
                "diagnose",
                at(hours=2, minutes=20),
                ENGINEER,
                "awaiting_consent",
                {
                    "diagnosis": "探测器电源板故障",
                    "plan": "更换电源板",
                    "cause": "normal_use",
                    "warranty_until": "2027-01-01T00:00:00Z",
                },
            ),
            Fire(
                t,
                "consent",
                at(hours=2, minutes=30),
                ENGINEER,
                "repairing",
                {"consented_by": "刘老师"},
            ),
            Due(t, "loaner_due", "repairing"),  # 8 h of repair: spawns the loaner
            Due(t, _warning("resolution"), "repairing"),
            Due(t, _breach("resolution"), "repairing"),  # record_breach, escalation to L3
            Fire(
                "loaner",
                "deliver",
                at(days=1, hours=1),
                ENGINEER,
                "delivered",
                {
                    "loaner_model": "DR-3000",
                    "loaner_serial": f"LN-{serial}",
                    "spec_equal_or_better": True,
                    "delivered_by": "陈工",
                },
            ),
            Fire(
                "loaner",
                "put_in_use",
                at(days=1, hours=1, minutes=10),
                PORTAL,
                "in_use",
                {"received_by": "刘老师"},
            ),
            Fire(
                t,
                "repair_done",
                at(days=2, hours=7),
                ENGINEER,
                "resolved",
                {
                    "replaced_parts": [
                        {
                            "part": "探测器电源板",
                            "part_no": "PB-220",
                            "disposal": "returned_to_factory",
                        }
                    ]
                },
            ),
            Fire(
                "loaner",
                "return_loaner",
                at(days=2, hours=8),
                ENGINEER,
                "returned",
                {"condition": "完好"},
            ),
            Fire(
                t,
                "sign",
                at(days=2, hours=8, minutes=30),
                ENGINEER,
                "signed",
                {"signed_by": "刘老师"},
            ),
            Fire(
                "survey",
                "score",
                at(days=2, hours=10),
                PORTAL,
                "closed",
                {"score": 5, "comment": "工程师很专业"},
            ),
            Fire(
                t,
                "deliver_report",
                at(days=3, hours=2),
                ENGINEER,
                "signed",
                {
                    "report_no": f"SR-{serial}",
                    "performance_test_passed": True,
                    "operator_instructed": True,
                },
            ),
            Fire(
                t,
                "close",
                at(days=3, hours=2, minutes=10),
                ENGINEER,
                "closed",
                {"feedback": "电源板已返厂，设备运行正常"},
            ),
        ),
        TICKET_CHILDREN,
    )


def repair_remote(serial: str) -> Journey:
    """Fixed by remote access the same morning; the customer scores the service 2, the
    ticket hears it is non-conforming, the manager reviews and the rectification is done."""
    t = "ticket"
    return Journey(
        "repair_remote",
        "workflows/scenarios/survey_score_review.yaml",
        (
            Create(
                t,
                "repair_ticket",
                {
                    "customer": "湛江市第一中学",
                    "device_serial": serial,
                    "fault": "无法登录",
                    "priority": "normal",
                    "channel": "wechat",
                },
                at(),
                HOTLINE,
                "logged",
            ),
            Fire(
                t,
                "contact",
                at(minutes=20),
                HOTLINE,
                "remote_diagnosis",
                {"at": iso(at(minutes=20))},
            ),
            Fire(
                t,
                "authorize_remote_access",
                at(minutes=25),
                HOTLINE,
                "remote_diagnosis",
                {"authorized_by": "信息科张工"},
            ),
            Fire(
                t,
                "fixed_remotely",
                at(minutes=45),
                HOTLINE,
                "resolved",
                {"note": "重置密码", "via": "remote_access"},
            ),
            Fire(t, "sign", at(hours=1), HOTLINE, "signed", {"signed_by": "刘老师"}),
            Fire(
                "survey",
                "score",
                at(hours=3),
                PORTAL,
                "under_review",
                {"score": 2, "comment": "等待太久"},
            ),
            Fire(
                t, "deliver_report", at(days=1), ENGINEER, "signed", {"report_no": f"SR-{serial}"}
            ),
            Fire(
                t,
                "close",
                at(days=1, minutes=10),
                ENGINEER,
                "closed",
                {"feedback": "远程重置后正常"},
            ),
            Fire(
                "survey",
                "review",
                at(days=1, hours=1),
                SUPERVISOR,
                "rectifying",
                {
                    "reviewer": "服务经理",
                    "findings": "响应慢",
                    "rectification": "调整热线排班",
                    "rectify_by": iso(at(days=10)),
                },
            ),
            Fire(
                "survey",
                "confirm_rectification",
                at(days=5),
                SUPERVISOR,
                "closed",
                {"result": "已调整排班"},
            ),
        ),
        TICKET_CHILDREN,
    )


def repair_late_arrival(serial: str) -> Journey:
    """An emergency: the engineer arrives 1h45m after the report (arrival, counted from the
    report, warned and breached, the breach recorded on the ticket), escalates on site, the
    damage is the customer's so the repair is paid (fee agreement), and nobody answers the
    survey (it closes after 7 days)."""
    t = "ticket"
    return Journey(
        "repair_late_arrival",
        "workflows/scenarios/repair_emergency_late_arrival.yaml",
        (
            Create(
                t,
                "repair_ticket",
                {
                    "customer": "濮阳市人民医院",
                    "device_serial": serial,
                    "device_model": "CT-64",
                    "fault": "系统无法运行",
                    "priority": "emergency",
                    "distance_class": "remote",
                    "channel": "hotline",
                },
                at(),
                HOTLINE,
                "logged",
            ),
            Fire(
                t,
                "contact",
                at(minutes=20),
                HOTLINE,
                "remote_diagnosis",
                {"at": iso(at(minutes=20))},
            ),
            Fire(
                t,
                "remote_failed",
                at(minutes=30),
                HOTLINE,
                "awaiting_dispatch",
                {"reason": "球管无法启动，需上门"},
            ),
            Fire(t, "dispatch", at(minutes=44), HOTLINE, "dispatched", {"engineer": "李工"}),
            # Arrival counts from the report: warned at 45 min, breached after 1 h.
            Due(t, _warning("arrival"), "dispatched"),
            Due(t, _breach("arrival"), "dispatched"),  # record_breach
            Fire(
                t,
                "confirm_visit",
                at(hours=1, minutes=4),
                ENGINEER,
                "dispatched",
                {"confirmed_with": "设备科王主任"},
            ),
            Fire(t, "arrive", at(hours=1, minutes=45), ENGINEER, "on_site"),
            Fire(
                t,
                "escalate",
                at(hours=1, minutes=50),
                ENGINEER,
                "on_site",
                {"reason": "球管故障需厂家专家"},
            ),
            Fire(
                t,
                "diagnose",
                at(hours=2),
                ENGINEER,
                "awaiting_fee_agreement",
                {
                    "diagnosis": "球管高压打火",
                    "plan": "更换球管",
                    "cause": "human_damage",
                    "warranty_until": "2027-01-01T00:00:00Z",
                },
            ),
            Fire(
                t,
                "sign_fee_agreement",
                at(hours=2, minutes=30),
                ENGINEER,
                "repairing",
                {
                    "signed_by": "王主任",
                    "items": [{"item": "球管", "amount": 86000}, {"item": "人工", "amount": 1200}],
                    "parts_fee": 86000,
                    "labour_fee": 1200,
                },
            ),
            Fire(
                t,
                "repair_done",
                at(hours=6),
                ENGINEER,
                "resolved",
                {
                    "note": "已更换球管",
                    "replaced_parts": [{"part": "球管", "disposal": "destroyed"}],
                },
            ),
            Fire(t, "sign", at(hours=6, minutes=30), ENGINEER, "signed", {"signed_by": "王主任"}),
            Fire(
                t,
                "deliver_report",
                at(days=1),
                ENGINEER,
                "signed",
                {
                    "report_no": f"SR-{serial}",
                    "performance_test_passed": True,
                    "operator_instructed": True,
                },
            ),
            Fire(t, "close", at(days=1, minutes=5), ENGINEER, "closed", {"feedback": "球管已更换"}),
            Due("survey", "unanswered", "unanswered"),
        ),
        TICKET_CHILDREN,
    )


def repair_late_contact(serial: str) -> Journey:
    """Nobody calls back within the hour: the first-contact clock warns, the contact timer
    moves the ticket to contact_late and the breach is recorded; then a remote fix."""
    t = "ticket"
    return Journey(
        "repair_late_contact",
        "tests/scenarios/repair_contact_and_arrival.yaml",
        (
            Create(
                t,
                "repair_ticket",
                {
                    "customer": "濮阳市人民医院",
                    "device_serial": serial,
                    "fault": "系统无法运行",
                    "priority": "emergency",
                },
                at(),
                HOTLINE,
                "logged",
            ),
            Due(t, _warning("first_contact"), "logged"),
            Due(t, "contact_overdue", "contact_late"),
            Due(t, _breach("first_contact"), "contact_late"),  # record_breach
            Fire(
                t,
                "contact",
                at(hours=1, minutes=1),
                HOTLINE,
                "remote_diagnosis",
                {"at": iso(at(hours=1, minutes=1))},
            ),
            Fire(
                t,
                "fixed_remotely",
                at(hours=1, minutes=20),
                HOTLINE,
                "resolved",
                {"note": "重启工作站"},
            ),
            Fire(t, "sign", at(hours=1, minutes=30), HOTLINE, "signed", {"signed_by": "王主任"}),
            Fire("survey", "score", at(hours=3), PORTAL, "closed", {"score": 4}),
            Fire(
                t, "deliver_report", at(days=1), ENGINEER, "signed", {"report_no": f"SR-{serial}"}
            ),
            Fire(t, "close", at(days=1, minutes=10), ENGINEER, "closed", {"feedback": "远程恢复"}),
        ),
        TICKET_CHILDREN,
    )


# --- complaints ----------------------------------------------------------------------------------

TEAM = {"manager": "赵敏", "expert": "陈工", "regional_lead": "周经理"}


def complaint_explained(serial: str) -> Journey:
    """Not the supplier's fault: the contact is late (timer and breach), the complaint is
    reclassified, explained with evidence, disputed once, explained again, agreed, archived."""
    c = "complaint"
    return Journey(
        "complaint_explained",
        "workflows/scenarios/complaint_not_at_fault.yaml",
        (
            Create(
                c,
                "complaint",
                {
                    "customer": "濮阳市人民医院",
                    "channel": "wechat",
                    "device_serial": serial,
                    "description": "超声探头外壳开裂，要求免费更换",
                    "category": "quality",
                    "severity": "minor",
                },
                at(),
                HOTLINE,
                "received",
            ),
            Due(c, _warning("first_contact"), "received"),
            Due(c, "contact_overdue", "contact_late"),
            Due(c, _breach("first_contact"), "contact_late"),
            Fire(
                c,
                "reclassify",
                at(hours=12, minutes=5),
                HOTLINE,
                "contact_late",
                {"category": "non_quality", "severity": "serious"},
            ),
            Fire(
                c,
                "contact",
                at(hours=13),
                HOTLINE,
                "investigating",
                {"manager": "赵敏", "complaint_form": f"TS-{serial}"},
            ),
            Fire(
                c,
                "conclude_not_at_fault",
                at(days=1, hours=8),
                HOTLINE,
                "explained",
                {
                    "team": TEAM,
                    "responsibility": "外力撞击所致，非产品质量问题",
                    "answer_ref": f"DF-{serial}-1",
                    "evidence": ["探头外壳撞击痕迹照片", "设备跌落日志"],
                },
            ),
            Fire(c, "dispute", at(days=1, hours=10), HOTLINE, "investigating"),
            Fire(
                c,
                "conclude_not_at_fault",
                at(days=2),
                HOTLINE,
                "explained",
                {
                    "team": TEAM,
                    "responsibility": "经厂家复核，仍为外力损坏",
                    "answer_ref": f"DF-{serial}-2",
                    "evidence": ["厂家复核报告 FR-8812"],
                },
            ),
            Fire(
                c,
                "agree_next_steps",
                at(days=2, hours=2),
                HOTLINE,
                "agreed",
                {"next_steps": "按成本价更换探头外壳", "agreed_by": "超声科马主任"},
            ),
            Fire(
                c,
                "close",
                at(days=2, hours=3),
                SUPERVISOR,
                "closed",
                {"report_ref": f"TSBG-{serial}", "archived_by": "档案室"},
            ),
        ),
    )


def complaint_rectified(serial: str) -> Journey:
    """The supplier is at fault: a rectification with a deadline, a result the customer
    sends back once, verified, archived."""
    c = "complaint"
    return Journey(
        "complaint_rectified",
        "workflows/scenarios/complaint_national_day.yaml",
        (
            Create(
                c,
                "complaint",
                {
                    "customer": "郑州大学第一附属医院",
                    "channel": "hotline",
                    "device_serial": serial,
                    "description": "维修后CT球管再次故障，影响门诊检查",
                    "category": "quality",
                    "severity": "serious",
                },
                at(),
                HOTLINE,
                "received",
            ),
            Fire(
                c,
                "contact",
                at(hours=5, minutes=30),
                HOTLINE,
                "investigating",
                {"manager": "王建国", "complaint_form": f"TS-{serial}"},
            ),
            Fire(
                c,
                "conclude_at_fault",
                at(days=1, hours=6),
                HOTLINE,
                "rectifying",
                {
                    "team": {"manager": "王建国", "expert": "李工", "regional_lead": "张主任"},
                    "responsibility": "球管批次质量缺陷",
                    "answer_ref": f"DF-{serial}",
                    "plan": "更换新批次球管并延长保修",
                    "rectify_by": iso(at(days=4)),
                },
            ),
            Fire(
                c,
                "finish_rectification",
                at(days=3),
                ENGINEER,
                "rectified",
                {"result": "已更换球管"},
            ),
            Fire(
                c, "rework", at(days=3, hours=4), HOTLINE, "rectifying", {"reason": "伪影仍然存在"}
            ),
            Fire(
                c,
                "finish_rectification",
                at(days=3, hours=6),
                ENGINEER,
                "rectified",
                {"result": "重新校准后伪影消除"},
            ),
            Fire(
                c,
                "feed_back",
                at(days=3, hours=7),
                HOTLINE,
                "verified",
                {"verified_by": "放射科刘主任"},
            ),
            Fire(
                c,
                "close",
                at(days=3, hours=8),
                SUPERVISOR,
                "closed",
                {"report_ref": f"TSBG-{serial}", "archived_by": "档案室"},
            ),
        ),
    )


# --- spare parts ---------------------------------------------------------------------------------


def _part(model: str) -> dict[str, Any]:
    return {
        "part_model": model,
        "part_name": "探测器模块",
        "requested_by": "王工",
        "customer": "新乡市中心医院",
    }


def _issue(record: str) -> dict[str, str]:
    return {"outbound_record": record, "signed_by": "王工", "store": "郑州中心库"}


def spare_installed(model: str) -> Journey:
    """A common part: reviewed, issued, on site within 24 hours, installed."""
    p = "part"
    return Journey(
        "spare_installed",
        "workflows/scenarios/spare_return_overdue.yaml",
        (
            Create(p, "spare_part", _part(model), at(), ENGINEER, "requested"),
            Fire(p, "approve", at(minutes=10), ERP, "approved", {"reviewed_by": "备件员孙丽"}),
            Fire(p, "issue", at(hours=1), ERP, "issued", _issue(f"CK-{model}")),
            Fire(p, "arrive_on_site", at(hours=7), ENGINEER, "issued"),
            Fire(
                p, "install", at(days=1), ENGINEER, "installed", {"device_serial": f"DEV-{model}"}
            ),
        ),
    )


def spare_custom(model: str) -> Journey:
    """A custom part: confirmed on site, ordered with a written arrival date that passes (the
    timer shows it), a new date, arrival, quality control, the customer told, issued, fitted."""
    p = "part"
    return Journey(
        "spare_custom",
        "workflows/scenarios/spare_custom_part.yaml",
        (
            Create(p, "spare_part", _part(model), at(), ENGINEER, "requested"),
            Fire(
                p,
                "confirm_custom",
                at(minutes=20),
                ENGINEER,
                "custom_confirmed",
                {"confirmed_by": "王工", "special": False},
            ),
            Fire(
                p,
                "order",
                at(hours=1),
                ERP,
                "ordered",
                {
                    "supplier": "厂家北京备件中心",
                    "order_ref": f"DZ-{model}",
                    "expected_arrival": iso(at(days=3, hours=9)),
                    "notice_ref": f"DHGZ-{model}-1",
                },
            ),
            Due(p, "promised_arrival", "delayed"),
            Fire(
                p,
                "revise_arrival",
                at(days=3, hours=10),
                ERP,
                "ordered",
                {"expected_arrival": iso(at(days=4, hours=9)), "notice_ref": f"DHGZ-{model}-2"},
            ),
            Fire(p, "arrive", at(days=4, hours=1), ERP, "arrived", {"delivery_ref": f"KD-{model}"}),
            Fire(
                p,
                "inspect",
                at(days=4, hours=3),
                ERP,
                "ready",
                {"qc_mode": "full", "passed": True, "inspector": "质检员何静"},
            ),
            Fire(
                p,
                "notify_customer",
                at(days=4, hours=4),
                ERP,
                "ready",
                {"notice_ref": f"DHTZ-{model}"},
            ),
            Fire(p, "issue", at(days=4, hours=5), ERP, "issued", _issue(f"CK-{model}")),
            Fire(
                p,
                "install",
                at(days=4, hours=9),
                ENGINEER,
                "installed",
                {"device_serial": f"DEV-{model}"},
            ),
        ),
    )


def spare_faulty(model: str) -> Journey:
    """A spare that turns out faulty on site: tagged, handed back for exchange, booked back;
    its 24-hour on-site clock warns on the way."""
    p = "part"
    return Journey(
        "spare_faulty",
        "workflows/scenarios/spare_faulty_and_loss.yaml",
        (
            Create(p, "spare_part", _part(model), at(), ENGINEER, "requested"),
            Fire(p, "approve", at(minutes=10), ERP, "approved", {"reviewed_by": "备件员孙丽"}),
            Fire(p, "issue", at(minutes=30), ERP, "issued", _issue(f"CK-{model}")),
            Due(p, _warning("common_part_on_site"), "issued"),
            Fire(
                p,
                "report_faulty",
                at(hours=20),
                ENGINEER,
                "faulty_tagged",
                {"fault": "高压输出不稳", "tag_no": f"GZ-{model}"},
            ),
            Fire(
                p,
                "hand_back",
                at(hours=21),
                ENGINEER,
                "handed_back",
                {"application": "exchange", "application_ref": f"HH-{model}"},
            ),
            Fire(p, "book_back", at(hours=22), ERP, "booked_back", {"booked_by": "备件员孙丽"}),
        ),
    )


def unit(tag: str) -> list[Journey]:
    """One unit of the mix: four repair tickets (with their loaner and surveys), two
    complaints, three spare parts. ``tag`` makes serials and part models unique."""
    return [
        repair_with_loaner(f"DR-{tag}-1"),
        repair_remote(f"PC-{tag}-2"),
        repair_late_arrival(f"CT-{tag}-3"),
        repair_late_contact(f"SN-{tag}-4"),
        complaint_explained(f"US-{tag}-5"),
        complaint_rectified(f"CT-{tag}-6"),
        spare_installed(f"PM-{tag}-7"),
        spare_custom(f"PM-{tag}-8"),
        spare_faulty(f"PM-{tag}-9"),
    ]
