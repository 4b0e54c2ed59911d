"""The engine's sentences (engine/core/messages.py) in the page's language.

The engine writes a sentence once, in English, for the API, the CLI and the logs, and keeps
its code and values beside it. A page words the code again from :data:`MESSAGE_WORDS` (en and
zh for every code: tests/api/test_message_words.py fails on a code without them), with the
definition's titles for its states and triggers. An error inside a sentence is said by what
its code means (error_words.py) or, for a refusing guard, by the definition's own words; its
English message follows as a quotation marked ``lang="en"`` (it is recorded text, which no
table can translate: a Python exception's message, say). Text stored before sentences had
codes is shown the same way: a translated lead, the stored text quoted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from api.dashboard import i18n
from api.dashboard.error_words import ERROR_ZH
from engine.core import messages
from engine.core.messages import Message, error_text, is_error_record

MESSAGE_WORDS: dict[str, Mapping[str, str]] = {
    messages.PLAN_SAME_VERSION: {
        "en": "the cases would stay on version {version}: choose another version to move to",
        "zh": "工单仍会停留在版本 {version}：请选择另一个目标版本",
    },
    messages.PLAN_REASON_REQUIRED: {
        "en": "a reason is required (it is kept in each case's history)",
        "zh": "必须填写原因（将记入每个工单的历史）",
    },
    messages.PLAN_UNKNOWN_SOURCE: {
        "en": "version {version} has no state {source} to map",
        "zh": "版本 {version} 中没有要映射的状态 {source}",
    },
    messages.PLAN_UNKNOWN_TARGET: {
        "en": "version {version} has no state {target}; its states are {states}",
        "zh": "版本 {version} 中没有状态 {target}；其状态为{states}",
    },
    messages.PLAN_MAPS_TO_FINAL: {
        "en": "{source} would map to the final state {target}: a running case would end "
        "without a transition (fire the trigger that ends it instead)",
        "zh": "{source} 将被映射到结束状态 {target}：办理中的工单会未经转换直接结束"
        "（请改为触发结束它的操作）",
    },
    messages.PLAN_UNDECLARED_FIELD: {
        "en": "version {version} declares no data field {field}",
        "zh": "版本 {version} 没有声明数据字段 {field}",
    },
    messages.PLAN_SET_AND_DROPPED: {
        "en": "the field {field} is both set and dropped",
        "zh": "字段 {field} 既被设置又被删除",
    },
    messages.PLAN_EXPRESSION: {"en": "{error}", "zh": "{error}"},
    messages.MIGRATION_OTHER_VERSION: {
        "en": "the case is on {definition} version {version}",
        "zh": "该工单使用的是 {definition} 版本 {version}",
    },
    messages.MIGRATION_CASE_CLOSED: {"en": "the case is {status}", "zh": "工单{status}"},
    messages.MIGRATION_WHERE_ERROR: {
        "en": "the condition (--where) could not be evaluated: {error}",
        "zh": "无法计算筛选条件（--where）：{error}",
    },
    messages.MIGRATION_WHERE_NOT_BOOLEAN: {
        "en": "the condition (--where) gave {value}, not true or false",
        "zh": "筛选条件（--where）的结果是 {value}，而不是 true 或 false",
    },
    messages.MIGRATION_WHERE_FALSE: {
        "en": "the condition (--where) is false for this case",
        "zh": "该工单不满足筛选条件（--where）",
    },
    messages.MIGRATION_STATE_UNMAPPED: {
        "en": "state {state} has no counterpart in version {version}: map it to one of {states}",
        "zh": "状态{state}在版本 {version} 中没有对应状态：请在状态映射中把它映射到{states}之一",
    },
    messages.MIGRATION_SET_ERROR: {
        "en": "the new value of {field} could not be computed: {error}",
        "zh": "无法计算字段 {field} 的新值：{error}",
    },
    messages.MIGRATION_DATA_INVALID: {
        "en": "the data would not fit the new version: {error}",
        "zh": "迁移后的数据不符合新版本的要求：{error}",
    },
    messages.MIGRATION_KEPT_PARAMETER: {
        "en": "the case's own parameter {parameter} does not fit the new version: {error} "
        "(take the new version's parameters instead)",
        "zh": "工单原有参数 {parameter} 不符合新版本：{error}（可改为采用新版本的参数）",
    },
    messages.MIGRATION_PARENT_UNNAMED: {
        "en": "the case is a child of case {parent} ({parent_definition}), and version "
        "{version} does not name that parent",
        "zh": "该工单是工单 {parent}（{parent_definition}）的下级工单，而版本 {version} "
        "未声明该上级流程",
    },
    messages.MIGRATION_CHILD_NEWS: {
        "en": "running child case {child} ({child_definition}) sends {triggers}, which "
        "version {version} does not take",
        "zh": "办理中的下级工单 {child}（{child_definition}）会发送{triggers}，"
        "而版本 {version} 不接收",
    },
    messages.MIGRATION_UNPLANNABLE: {
        "en": "its timers or SLA clocks cannot be planned under version {version}: {error}",
        "zh": "无法按版本 {version} 安排其定时器或服务时限：{error}",
    },
    messages.MIGRATION_WRITE_ERROR: {"en": "{error}", "zh": "{error}"},
    messages.MIGRATION_KEPT_CHANGING: {
        "en": "the case changed {attempts} times while it was being moved; run again",
        "zh": "迁移过程中工单被修改了 {attempts} 次；请再次运行",
    },
    messages.SIM_CREATED: {
        "en": "created case {case_id} in {state}",
        "zh": "已创建工单 {case_id}，状态为{state}",
    },
    messages.SIM_CREATED_UNDER: {
        "en": "created case {case_id} in {state} under contract {contract}",
        "zh": "已按合同 {contract} 创建工单 {case_id}，状态为{state}",
    },
    messages.SIM_FIRED: {
        "en": "{trigger}: {from_state} → {state}",
        "zh": "{trigger}：{from_state} → {state}",
    },
    messages.SIM_CANCELLED: {"en": "cancelled case {case_id}", "zh": "已取消工单 {case_id}"},
    messages.SIM_ADVANCED: {
        "en": "advanced {duration}; {fired} timer(s) fired",
        "zh": "时间前进 {duration}；触发了 {fired} 个定时器",
    },
    messages.SIM_ADVANCED_TO: {
        "en": "advanced to {instant}; {fired} timer(s) fired",
        "zh": "时间前进到 {instant}；触发了 {fired} 个定时器",
    },
    messages.SIM_WRONG_ERROR: {
        "en": "expected error {expected}, got {code}: {error}",
        "zh": "预期错误 {expected}，实际为 {code}：{error}",
    },
    messages.SIM_FAILED_AS_EXPECTED: {
        "en": "failed as expected: {code}",
        "zh": "按预期失败：{code}",
    },
    messages.SIM_NO_ERROR: {
        "en": "expected error {expected}, but the step succeeded",
        "zh": "预期错误 {expected}，但该步骤成功了",
    },
    messages.SIM_NO_ERROR_ANY: {
        "en": "expected an error, but the step succeeded",
        "zh": "预期出错，但该步骤成功了",
    },
    messages.SIM_AS_EXPECTED: {
        "en": "case {case_id} as expected",
        "zh": "工单 {case_id} 符合预期",
    },
    messages.SIM_STEP_ERROR: {"en": "{code}: {error}", "zh": "{error}"},
    messages.SIM_DIFFERS: {
        "en": "{what} is {actual}, expected {expected}",
        "zh": "{what} 为 {actual}，预期为 {expected}",
    },
    messages.SIM_ABSENT: {
        "en": "{what} is absent, expected {expected}",
        "zh": "{what} 不存在，预期为 {expected}",
    },
    messages.SIM_TRIGGERS: {
        "en": "triggers fired {actual}, expected {expected}",
        "zh": "已触发的操作为 {actual}，预期为 {expected}",
    },
    messages.SIM_EVENTS_MISSING: {
        "en": "history lacks event(s) {missing}; it has {actual}",
        "zh": "历史中缺少事件 {missing}；实际事件为 {actual}",
    },
    messages.SIM_SLA_MISSING: {
        "en": "SLA {sla} does not exist in the definition; expected {expected}",
        "zh": "流程定义中没有时限 {sla}；预期为 {expected}",
    },
    messages.SIM_SLA_ROUNDS: {
        "en": "the rounds of SLA {sla} are {actual}, expected {expected}",
        "zh": "时限 {sla} 各轮状态为 {actual}，预期为 {expected}",
    },
    messages.SIM_SLA_STATUS: {
        "en": "SLA {sla} is {actual}, expected {expected}",
        "zh": "时限 {sla} 为 {actual}，预期为 {expected}",
    },
    messages.TIMER_PERMANENT_ERROR: {
        "en": "a permanent error: a retry would fail the same way until its cause is fixed",
        "zh": "该错误不会自行消失：修正原因之前，重试也会同样失败",
    },
    messages.TIMER_GAVE_UP: {
        "en": "gave up after {attempts} attempts",
        "zh": "尝试 {attempts} 次后放弃",
    },
    messages.TIMER_CASE_CLOSED: {
        "en": "case {case_id} is {status}",
        "zh": "工单 {case_id} {status}",
    },
    messages.TIMER_STATE_LEFT: {
        "en": "case {case_id} has left the state this timer belonged to (now {state})",
        "zh": "工单 {case_id} 已离开该定时器所属的状态（当前为{state}）",
    },
    messages.SLA_RESUME_TIME_REACHED: {
        "en": "the pause's resume time was reached",
        "zh": "已到暂停时设定的恢复时间",
    },
    messages.CHILD_NEWS_REFUSED: {"en": "{error}", "zh": "{error}"},
}

# A failed timer, said from the row's or the event's facts (what the engine keeps as
# ``last_error`` is English: it is the quoted detail after these).
TIMER_WORDS: dict[str, Mapping[str, str]] = {
    "timer_failed_lead": {
        "en": "Timer {timer} failed (attempt {attempt})",
        "zh": "定时器 {timer} 触发失败（第 {attempt} 次尝试）",
    },
    "timer_retry_at": {"en": "retried at {at}", "zh": "将于 {at} 重试"},
    "timer_gave_up": {"en": "not retried any more", "zh": "不再自动重试"},
    "unexpected_error": {"en": "unexpected error", "zh": "意外错误"},
}

NAMES = frozenset(
    {
        "definition",
        "parent_definition",
        "child_definition",
        "field",
        "parameter",
        "value",
        "source",
        "target",
        # a scenario's step: what it names, and values as the scenario spells them (JSON)
        "what",
        "actual",
        "expected",
        "missing",
        "code",
        "contract",
        "duration",
        "instant",
        "sla",
    }
)


@dataclass(frozen=True)
class Titles:
    """How a sentence's states and triggers read: the definition's titles in the reader's
    language. ``new_state`` names the states of the version a case would move to."""

    state: Callable[[str], str] = str
    new_state: Callable[[str], str] = str
    trigger: Callable[[str], str] = str


def say(message: Message, lang: str, titles: Titles = Titles()) -> Markup:
    """``message`` in ``lang``: the table's words, its values as the page shows them."""
    words = i18n.pick(MESSAGE_WORDS, message.code, lang)
    values = {name: _value(name, value, lang, titles) for name, value in message.params.items()}
    return Markup(escape(words)).format(**values)


def say_stored(stored: Any, text: Any, lang: str, titles: Titles = Titles()) -> Markup:
    """A sentence the engine stored (its code and values, ``stored``), or, for a row written
    before it kept them, its English ``text``, quoted on a Chinese page."""
    message = messages.from_stored(stored)
    if message is not None:
        return say(message, lang, titles)
    return quoted(str(text or "")) if lang != "en" else escape(str(text or ""))


def error(record: Mapping[str, Any], lang: str) -> Markup:
    """An error record: in English its message; otherwise what its code means, or a guard's
    own words, and the English message quoted."""
    if lang == "en":
        return escape(error_text(record))
    reasons = record.get("reasons") or []
    said = [str(r.get(lang) or "") for r in reasons if isinstance(r, Mapping)]
    if said and all(said):
        return escape("；".join(said))
    code = record.get("code")
    meaning = ERROR_ZH.get(str(code)) if code else None
    if meaning is not None:
        return Markup("{meaning}（<code>{code}</code>）：{raw}").format(
            meaning=meaning, code=code, raw=quoted(error_text(record))
        )
    if record.get("type"):  # not one of svcflow's errors: a Python exception and its text
        raw = f"{record['type']}: {error_text(record)}"
        lead = i18n.pick(TIMER_WORDS, "unexpected_error", lang)
        return Markup("{lead}：{raw}").format(lead=lead, raw=quoted(raw))
    return quoted(error_text(record))  # a code this release does not know


def quoted(text: str) -> Markup:
    """Recorded English text on a page in another language: quoted, and marked as English
    (screen readers switch voice; the page's language checks leave it alone)."""
    return Markup('<q class="recorded" lang="en" translate="no">{}</q>').format(text)


def timer_failure(
    *,
    timer: str,
    attempt: int,
    stored_error: Any,
    text: str | None,
    retry_at: str | None,
    lang: str,
    local_time: Callable[[str], str],
) -> Markup:
    """A failed attempt of a timer: a lead in the page's language (which timer, which
    attempt, retried when or not at all), then its error (:func:`error`), or the English
    text stored before errors were kept as data, quoted."""
    words = Markup(escape(i18n.pick(TIMER_WORDS, "timer_failed_lead", lang)))
    name = Markup('<span class="mono">{}</span>').format(timer)
    lead = words.format(timer=name, attempt=attempt)
    if retry_at:
        after = i18n.pick(TIMER_WORDS, "timer_retry_at", lang).format(at=local_time(retry_at))
    else:
        after = i18n.pick(TIMER_WORDS, "timer_gave_up", lang)
    if lang == "en":  # the engine's own text, with the error's type and a guard's CEL
        said = escape(text or (error_text(stored_error) if is_error_record(stored_error) else ""))
    elif is_error_record(stored_error):
        said = error(stored_error, lang)
    else:
        said = quoted(text or "")
    comma, colon = ("，", "：") if lang == "zh" else (", ", ": ")
    return Markup("{lead}{comma}{after}{colon}{said}").format(
        lead=lead, comma=comma, after=after, colon=colon, said=said
    )


def _value(name: str, value: Any, lang: str, titles: Titles) -> Markup | str:
    if is_error_record(value):
        return error(value, lang)
    if name in ("state", "from_state"):
        return _state(str(value), titles.state(str(value)), lang)
    if name == "states":
        return _joined([_state(str(v), titles.new_state(str(v)), lang) for v in value], lang)
    if name == "trigger":
        return _trigger(str(value), titles, lang)
    if name == "triggers":
        return _joined([_trigger(str(v), titles, lang) for v in value], lang)
    if name == "status":
        return i18n.pick(i18n.STATUSES, str(value), lang)
    if name in NAMES:
        return Markup('<span class="mono">{}</span>').format(value)
    if isinstance(value, list | tuple):
        return _joined([escape(str(v)) for v in value], lang)
    return str(value)


def _titled(title: str, lang: str) -> Markup:
    return Markup("「{}」" if lang == "zh" else "'{}'").format(title)


def _trigger(name: str, titles: Titles, lang: str) -> Markup:
    """A trigger by its title; one without a title by its name, set as a name."""
    title = titles.trigger(name)
    if title == name:
        return Markup('<span class="mono">{}</span>').format(name)
    return _titled(title, lang)


def _state(name: str, title: str, lang: str) -> Markup:
    """A state by its title, and by its name where that differs: a state map is written
    in names."""
    if title == name:
        return Markup('<span class="mono">{}</span>').format(name)
    return Markup('{}<span class="mono">({})</span>').format(_titled(title, lang), name)


def _joined(parts: list[Markup], lang: str) -> Markup:
    return Markup("、" if lang == "zh" else ", ").join(parts)
