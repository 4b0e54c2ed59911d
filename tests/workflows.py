"""Small workflow definitions written for the tests, shared by the integration and API suites.

Every test gets a database of its own, so a name here only has to differ from the bundled
workflows (tests/api publishes those into the same database).
"""

from __future__ import annotations

# A counter with a self-loop, a guarded step, a payload schema and three transitions that
# always or sometimes fail in their actions:
#   overflow  sets count beyond data_schema's maximum          -> DataInvalid
#   divide    divides by data.zero (0 or missing)              -> ExpressionError
#   label     reads data.extra, which cases may not have        -> ExpressionError
COUNTER = """\
name: it_counter
title: {en: Counter, zh: 计数}
initial: open
parameters:
  limit: {type: integer, default: 3}
  label: {type: string, default: plain}
  window: {type: duration, default: 2h}
  ratio: {type: number, default: 1.5}
  strict: {type: boolean, default: false}
data_schema:
  type: object
  required: [count]
  properties:
    count: {type: integer, minimum: 0, maximum: 1000}
    zero: {type: integer}
    ratio: {type: number}
    rejections: {type: integer, minimum: 0}
    note: {type: string}
    tag: {type: string}
    extra: {type: string}
states:
  - name: open
    title: {en: Open, zh: 打开}
  - name: review
    title: {en: Review, zh: 审核}
  - name: done
    title: {en: Done, zh: 完成}
    final: true
transitions:
  - trigger: ping
    source: open
    dest: open
    actions:
      - increment: count
  - trigger: submit
    source: open
    dest: review
    guard: "data.count >= params.limit"
  - trigger: reject
    source: review
    dest: open
    actions:
      - increment: rejections
  - trigger: approve
    source: review
    dest: done
    payload_schema:
      type: object
      required: [note]
      properties: {note: {type: string, minLength: 1}}
    actions:
      - set: {note: payload.note}
  - trigger: overflow
    source: open
    dest: review
    actions:
      - set: {count: "data.count + 2000"}
  - trigger: divide
    source: [open, review]
    dest: open
    actions:
      - set: {ratio: "10 / data.zero"}
  - trigger: label
    source: open
    dest: open
    actions:
      - set: {tag: "data.extra + '!'"}
"""

COUNTER_TRIGGERS = ("ping", "submit", "reject", "approve", "overflow", "divide", "label")

# Two versions of one definition: v2 counts in steps of 5 and adds a state.
VERSIONED_V1 = """\
name: it_versioned
title: {en: Versioned, zh: 版本}
initial: open
data_schema:
  type: object
  properties:
    count: {type: integer}
states:
  - name: open
    title: {en: Open, zh: 打开}
  - name: done
    title: {en: Done, zh: 完成}
    final: true
transitions:
  - trigger: ping
    source: open
    dest: open
    actions:
      - increment: count
  - trigger: finish
    source: open
    dest: done
"""

VERSIONED_V2 = (
    VERSIONED_V1.replace("      - increment: count", "      - increment: {field: count, by: 5}")
    .replace(
        "  - name: done\n",
        "  - name: parked\n    title: {en: Parked, zh: 暂停}\n  - name: done\n",
    )
    .replace(
        "  - trigger: finish\n",
        "  - trigger: park\n    source: open\n    dest: parked\n"
        "  - trigger: finish\n    source: parked\n    dest: done\n"
        "  - trigger: finish\n",
    )
)

# The smallest definition: no assignee, no timer, no SLA. A second definition shows that
# business keys and idempotency keys are scoped per definition; operator actions that need an
# assignee field or a clock are refused on it.
PLAIN = """\
name: plain
title: {en: Plain, zh: 简单}
initial: open
states:
  - name: open
    title: {en: Open, zh: 打开}
  - name: done
    title: {en: Done, zh: 完成}
    final: true
transitions:
  - trigger: finish
    source: open
    dest: done
"""

# A service ticket, shared by the operator tests of the services, the supervision API and the
# dashboard:
#   received   a reminder after 2h whose guard refuses while ``allowed`` is false (so its timer
#              fails for good); ``permit`` sets it;
#   repairing  a parts chase timer; ``start`` has a title for the dashboard to show;
#   on_hold    pauses the 4-hour ``response`` SLA (warned at half time, met by ``start``);
#   repair     a second SLA, from ``start`` to ``close``;
#   engineer   the assignee field a reassignment sets.
TICKET = """\
name: service_ticket
title: {en: Service ticket, zh: 服务工单}
initial: received
assignee: engineer
data_schema:
  type: object
  required: [allowed]
  properties:
    engineer: {type: string}
    allowed: {type: boolean}
    team: {type: string}
    device_serial: {type: string}
states:
  - name: received
    title: {en: Received, zh: 已受理}
    timers:
      - {name: remind, after: 2h, trigger: remind}
  - name: repairing
    title: {en: Repairing, zh: 维修中}
    timers:
      - {name: chase_parts, after: 1d, trigger: chase}
  - name: on_hold
    title: {en: On hold, zh: 挂起}
  - name: closed
    title: {en: Closed, zh: 已关闭}
    final: true
transitions:
  - trigger: remind  # the timer's, and a supervisor may send one by hand
    source: received
    dest: received
    roles: [supervisor]
    guard: "data.allowed"
    guard_message: {en: Reminders are not allowed for this ticket., zh: 本工单不允许提醒。}
  - trigger: permit
    source: received
    dest: received
    actions:
      - set: {allowed: "true"}
  - trigger: start
    source: received
    dest: repairing
    title: {en: Start the repair, zh: 开始维修}
  - trigger: chase
    source: repairing
    dest: repairing
  - trigger: hold
    source: received
    dest: on_hold
  - trigger: unhold
    source: on_hold
    dest: received
  - trigger: close
    source: [received, repairing]
    dest: closed
slas:
  - name: response
    title: {en: Response time, zh: 响应时限}
    target: 4h
    start: {states: [received]}
    pause: {states: [on_hold]}
    stop: {states: [repairing]}
    warn_at: [0.5]
  - name: repair
    title: {en: Repair, zh: 维修}
    target: 2d
    start: {states: [repairing]}
    stop: {states: [closed]}
"""
