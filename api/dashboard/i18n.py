"""The dashboard's words in Chinese and English.

Labels that belong to a workflow (definition, state, SLA and transition titles) come from the
definitions' ``title.zh`` / ``title.en``; this module holds only the dashboard's own words.
Every key has both languages (tests/api/test_dashboard.py checks it), so a missing translation
fails a test instead of showing a key to a supervisor.
"""

from __future__ import annotations

from collections.abc import Mapping

from api.dashboard.workbench_words import WORKBENCH_WORDS

LANGUAGES = ("zh", "en")
DEFAULT = "zh"

STRINGS: dict[str, Mapping[str, str]] = {
    # --- frame ---------------------------------------------------------------------------------
    "app_title": {"en": "svcflow supervision", "zh": "svcflow 服务监管"},
    "nav_overview": {"en": "Overview", "zh": "总览"},
    "nav_stuck": {"en": "Stuck cases", "zh": "停滞工单"},
    "nav_kpis": {"en": "KPIs", "zh": "考核指标"},
    "nav_contracts": {"en": "Contracts", "zh": "服务合同"},
    "nav_webhooks": {"en": "Webhooks", "zh": "Webhook 推送"},
    "find_placeholder": {
        "en": "Case id, business key, customer or serial",
        "zh": "工单号、业务编号、客户或设备序列号",
    },
    "find": {"en": "Open", "zh": "打开"},
    "logout": {"en": "Log out", "zh": "退出登录"},
    "signed_in_as": {"en": "Signed in as", "zh": "当前用户"},
    "language": {"en": "Language", "zh": "语言"},
    "switch_language": {"en": "中文", "zh": "English"},
    "role_supervisor": {"en": "supervisor", "zh": "主管"},
    "role_admin": {"en": "administrator", "zh": "管理员"},
    "role_process_owner": {"en": "process owner", "zh": "流程负责人"},
    "times_note": {
        "en": "Times are Beijing time (Asia/Shanghai).",
        "zh": "时间均为北京时间（Asia/Shanghai）。",
    },
    "times_note_zone": {
        "en": "Times are {zone} time (UTC{offset}).",
        "zh": "时间均为 {zone} 时间（UTC{offset}）。",
    },
    # --- login ---------------------------------------------------------------------------------
    "login_title": {"en": "Sign in", "zh": "登录"},
    "login_intro": {
        "en": "Sign in with your API token (from `svcflow tokens create`). Supervisor, "
        "process owner and administrator tokens may use the dashboard.",
        "zh": "请使用 API 令牌登录（由 `svcflow tokens create` 创建）。"
        "主管、流程负责人和管理员令牌可使用本看板。",
    },
    "token": {"en": "API token", "zh": "API 令牌"},
    "login_button": {"en": "Sign in", "zh": "登录"},
    "login_unknown": {"en": "This token is unknown or revoked.", "zh": "令牌无效或已被吊销。"},
    "login_empty": {"en": "Paste your API token.", "zh": "请粘贴 API 令牌。"},
    "logged_in": {"en": "Signed in.", "zh": "已登录。"},
    "logged_out": {"en": "Signed out.", "zh": "已退出登录。"},
    "login_needed": {"en": "Please sign in.", "zh": "请先登录。"},
    "forbidden_role_title": {"en": "Not for this role", "zh": "无权访问"},
    "forbidden_role": {
        "en": "The token {name!r} has the role {role!r}. The dashboard is for supervisors, "
        "process owners and administrators only; use the API or the command line, or ask an "
        "administrator for a supervisor or process owner token.",
        "zh": "令牌 {name!r} 的角色是 {role!r}。本看板仅供主管、流程负责人和管理员使用；"
        "请使用 API 或命令行，或向管理员申请主管或流程负责人令牌。",
    },
    "not_for_role": {
        "en": "The {role} role may not use this page or action; it is for: {roles}. "
        "Nothing was changed.",
        "zh": "{role}角色无权使用此页面或操作，仅限：{roles}。未做任何更改。",
    },
    # --- errors --------------------------------------------------------------------------------
    "error": {"en": "Error", "zh": "错误"},
    "hint": {"en": "Hint", "zh": "提示"},
    "back": {"en": "Back", "zh": "返回"},
    "csrf_failed_title": {"en": "Form refused", "zh": "表单被拒绝"},
    "csrf_failed": {
        "en": "The form was not sent from this dashboard, or it expired ({detail}). Reload "
        "the page and send it again.",
        "zh": "该表单并非从本看板提交，或已过期（{detail}）。请刷新页面后重新提交。",
    },
    "not_found": {"en": "Not found", "zh": "未找到"},
    "not_found_detail": {"en": "There is no such page.", "zh": "页面不存在。"},
    "forbidden": {"en": "Forbidden", "zh": "禁止访问"},
    "admin_only": {
        "en": "Only administrators may force a case into a state. Fire an allowed trigger "
        "instead, or ask an administrator.",
        "zh": "只有管理员可以强制设置工单状态。请改为触发允许的操作，或联系管理员。",
    },
    "server_error": {"en": "Something went wrong", "zh": "出现错误"},
    "server_error_detail": {
        "en": "An unexpected error happened; it has been logged.",
        "zh": "发生意外错误，已记录日志。",
    },
    "database_unavailable_title": {"en": "Database unreachable", "zh": "数据库暂时无法访问"},
    "database_unavailable": {
        "en": "svcflow cannot reach its database right now, so this page cannot be shown.",
        "zh": "svcflow 暂时无法访问数据库，因此无法显示此页面。",
    },
    "try_again_later": {
        "en": "Reload the page in a few seconds; if you had sent a form, look at the case "
        "before sending it again. If it keeps failing, tell your administrator: the database "
        "server may be down.",
        "zh": "请几秒钟后刷新页面；如果刚才提交了表单，请先查看工单再决定是否重新提交。"
        "如果一直失败，请联系管理员：数据库服务器可能已停止。",
    },
    # --- overview ------------------------------------------------------------------------------
    "overview_title": {"en": "Overview", "zh": "总览"},
    "overview_intro": {
        "en": "Each workflow's latest version, with its open cases per state. States with "
        "stuck cases are red.",
        "zh": "各流程的最新版本及各状态的在办工单数。含停滞工单的状态以红色标出。",
    },
    "stuck_counts": {"en": "Stuck cases by reason", "zh": "按原因统计的停滞工单"},
    "open_cases": {"en": "open cases", "zh": "在办工单"},
    "stuck_cases": {"en": "stuck", "zh": "停滞"},
    "version": {"en": "version", "zh": "版本"},
    "versions_title": {"en": "Versions of {name}", "zh": "{name} 的版本"},
    "versions_intro": {
        "en": "Each published version, the cases on it, and what changed between two versions. "
        "New cases get the current version.",
        "zh": "每个已发布的版本及其工单，以及两个版本之间的变化。新工单使用当前版本。",
    },
    "versions_link": {"en": "versions", "zh": "版本"},
    "diagram_full_size": {"en": "diagram full size", "zh": "原尺寸状态图"},
    "diagram_hint": {
        "en": "Hover over a state or an arrow for its details (guards, roles, timers, SLAs).",
        "zh": "鼠标悬停在状态或箭头上可查看详情（条件、可触发角色、定时器、SLA）。",
    },
    "published_at": {"en": "Published", "zh": "发布时间"},
    "published_by": {"en": "By", "zh": "发布人"},
    "current_version": {"en": "current", "zh": "当前"},
    "retired_version": {"en": "retired", "zh": "已停用"},
    "definition_retired": {
        "en": "This definition is retired: it takes no new cases.",
        "zh": "该流程已停用：不再创建新工单。",
    },
    "running_by_state": {"en": "Running (by state)", "zh": "办理中（按状态）"},
    "completed_cases": {"en": "Completed", "zh": "已完成"},
    "cancelled_cases": {"en": "Cancelled", "zh": "已取消"},
    "show_version": {"en": "Diagram of version", "zh": "查看版本流程图"},
    "compare": {"en": "Compare", "zh": "比较"},
    "compare_from": {"en": "Compare from version", "zh": "比较的旧版本"},
    "compare_to": {"en": "with version", "zh": "比较的新版本"},
    "changes_between": {
        "en": "Changes from version {old} to {new}",
        "zh": "版本 {old} 到 {new} 的变化",
    },
    "text_diff": {"en": "Text of the documents", "zh": "文档文本差异"},
    "decisions": {"en": "Decisions", "zh": "版本决定"},
    "promote": {"en": "Make current", "zh": "设为当前版本"},
    "promote_why": {"en": "Reason (kept in the definition's audit)", "zh": "原因（记入流程审计）"},
    "retire": {"en": "Retire", "zh": "停用"},
    "restore": {"en": "Restore", "zh": "恢复"},
    "retire_definition": {"en": "Retire the whole definition", "zh": "停用整个流程"},
    "restore_definition": {"en": "Restore the definition", "zh": "恢复该流程"},
    "decision_why": {"en": "Reason (kept in the audit)", "zh": "原因（记入审计）"},
    "version_n": {"en": "version {version}", "zh": "版本 {version}"},
    "retired_message": {
        "en": "{what} takes no new cases now; running cases continue.",
        "zh": "{what} 已停用，不再创建新工单；办理中的工单继续办理。",
    },
    "restored_message": {
        "en": "{what} takes new cases again.",
        "zh": "{what} 已恢复，可以再次创建新工单。",
    },
    "promoted": {
        "en": "New cases of {name} now get version {version}.",
        "zh": "{name} 的新工单现在使用版本 {version}。",
    },
    "migrate_title": {
        "en": "Move running cases to another version",
        "zh": "将办理中的工单迁移到其他版本",
    },
    "migrate_intro": {
        "en": "A dry run first: it writes nothing and says what would happen to each case. "
        "Each case moves in a transaction of its own with a 'migrated' history event; "
        "submitting the same plan again moves only the cases still on the old version.",
        "zh": "请先试运行：试运行不写入任何数据，只说明每个工单将会如何。每个工单单独迁移，"
        "并在历史中记录“迁移”事件；再次提交同一计划只迁移仍在旧版本的工单。",
    },
    "migrate_from": {"en": "From version", "zh": "从版本"},
    "migrate_to": {"en": "To version", "zh": "到版本"},
    "migrate_map": {"en": "States OLD=NEW, one a line", "zh": "状态映射 旧=新，每行一个"},
    "migrate_set": {"en": "Data FIELD=CEL, one a line", "zh": "数据 字段=CEL，每行一个"},
    "migrate_drop": {"en": "Fields to drop", "zh": "删除的字段"},
    "migrate_where": {"en": "Only cases where (CEL)", "zh": "仅限满足条件的工单（CEL）"},
    "migrate_params": {"en": "Parameters", "zh": "参数"},
    "params_keep": {"en": "keep each case's own", "zh": "保留工单原有参数"},
    "params_snapshot": {"en": "take the new version's", "zh": "采用新版本的参数"},
    "migrate_apply": {
        "en": "Apply (unticked: a dry run that writes nothing)",
        "zh": "执行迁移（不勾选则为试运行，不写入任何数据）",
    },
    "migrate_run": {"en": "Run", "zh": "运行"},
    "migrate_dry_run": {
        "en": "Dry run: nothing was written.",
        "zh": "试运行：未写入任何数据。",
    },
    "migrate_outcome": {"en": "Outcome", "zh": "结果"},
    "migrate_outcome_would_move": {"en": "would move", "zh": "将迁移"},
    "migrate_outcome_moved": {"en": "moved", "zh": "已迁移"},
    "migrate_outcome_refused": {"en": "refused", "zh": "不能迁移"},
    "migrate_outcome_skipped": {"en": "skipped", "zh": "已跳过"},
    "migrate_no_changes": {"en": "no data changed", "zh": "数据无变更"},
    "migrate_past_move": {
        "en": "event {seq}: {trigger} from {source} to {dest} is not a transition of version "
        "{version}",
        "zh": "事件 {seq}：「{trigger}」从「{source}」到「{dest}」"
        "在版本 {version} 中没有对应的转换",
    },
    "migrate_detail": {"en": "Changes or reasons", "zh": "变更或原因"},
    "migrate_none": {
        "en": "No running case on the old version.",
        "zh": "旧版本没有办理中的工单。",
    },
    "migrate_more": {
        "en": "More cases remain: submit the same plan again to continue.",
        "zh": "还有工单未处理：再次提交同一计划即可继续。",
    },
    "draft_title": {"en": "Draft of {name}", "zh": "{name} 的草稿"},
    "draft_intro": {
        "en": "Edit the definition here; saving checks it as publishing would and shows every "
        "problem at its line. Publishing stores it as the next version.",
        "zh": "在此编辑流程定义；保存时按发布的标准检查，并在对应行显示每个问题。"
        "发布后成为下一个版本。",
    },
    "draft_saved_at": {"en": "saved", "zh": "保存于"},
    "draft_report": {
        "en": "{errors} error(s), {warnings} warning(s)",
        "zh": "{errors} 个错误，{warnings} 个警告",
    },
    "line": {"en": "line", "zh": "行"},
    "save_draft": {"en": "Save and check", "zh": "保存并检查"},
    "publish_draft": {"en": "Publish the saved draft", "zh": "发布已保存的草稿"},
    "edit_draft": {"en": "Edit a draft", "zh": "编辑草稿"},
    "draft_saved": {"en": "Draft of {name} saved.", "zh": "{name} 的草稿已保存。"},
    "draft_renamed": {
        "en": "The draft names itself {name}: it was saved as that definition's draft.",
        "zh": "草稿中的名称是 {name}：已保存为该流程的草稿。",
    },
    "draft_published": {
        "en": "{name} published as version {version}.",
        "zh": "{name} 已发布为版本 {version}。",
    },
    "draft_unchanged": {
        "en": "{name}: the draft is identical to version {version}; nothing was published.",
        "zh": "{name}：草稿与版本 {version} 相同，未发布新版本。",
    },
    "simulate_title": {"en": "Try the draft on a scenario", "zh": "用场景试运行草稿"},
    "simulate_intro": {
        "en": "A scenario (docs/simulation.md) runs against the saved draft on a scratch "
        "database and a virtual clock: this deployment's data is not touched.",
        "zh": "场景（见 docs/simulation.md）在临时数据库和虚拟时钟上运行已保存的草稿，"
        "不会影响本系统的数据。",
    },
    "simulate_run": {"en": "Simulate", "zh": "试运行"},
    "simulate_ok": {"en": "Every step passed.", "zh": "所有步骤均通过。"},
    "step_ok": {"en": "ok", "zh": "通过"},
    "step_failed": {"en": "FAIL", "zh": "未通过"},
    "simulate_failed": {"en": "{failed} step(s) failed.", "zh": "{failed} 个步骤未通过。"},
    "simulate_timers": {"en": "{count} timer(s) fired", "zh": "触发了 {count} 个定时器"},
    "bad_version": {"en": "{value!r} is not a version number.", "zh": "{value!r} 不是版本号。"},
    "unknown_version": {
        "en": "{name} has no version {version}.",
        "zh": "{name} 没有版本 {version}。",
    },
    "diagram_unavailable": {
        "en": "The diagram could not be drawn: {detail}",
        "zh": "无法绘制状态图：{detail}",
    },
    "no_definitions": {"en": "No workflow is published yet.", "zh": "尚未发布任何流程。"},
    "other_states": {
        "en": "Open cases in states of older versions: {states}",
        "zh": "处于旧版本状态的在办工单：{states}",
    },
    # --- stuck list ----------------------------------------------------------------------------
    "stuck_title": {"en": "Stuck cases", "zh": "停滞工单"},
    "filter": {"en": "Filter", "zh": "筛选"},
    "all_reasons": {"en": "All reasons", "zh": "全部原因"},
    "all_definitions": {"en": "All workflows", "zh": "全部流程"},
    "reason": {"en": "Reason", "zh": "原因"},
    "case": {"en": "Case", "zh": "工单"},
    "since": {"en": "Since", "zh": "起始时间"},
    "detail": {"en": "Detail", "zh": "详情"},
    "suggested_action": {"en": "Suggested action", "zh": "建议操作"},
    "actions": {"en": "Actions", "zh": "操作"},
    "no_findings": {"en": "Nothing is stuck.", "zh": "没有停滞的工单。"},
    "findings_capped": {
        "en": "At most {limit} findings per reason are listed.",
        "zh": "每种原因最多列出 {limit} 条。",
    },
    # A finding's detail on a Chinese page, worded from the finding's facts (pages.py
    # finding_detail); an English page shows the engine's own sentence, which these match.
    "detail_sla_breached": {"en": "SLA {sla}", "zh": "「{sla}」已超时"},
    "detail_sla_warning": {"en": "SLA {sla}", "zh": "「{sla}」已过预警线"},
    "detail_sla_paused_until": {
        "en": "SLA {sla} paused by an operator until its resume time",
        "zh": "「{sla}」已被操作员暂停，到恢复时间自动恢复",
    },
    "detail_sla_paused": {
        "en": "SLA {sla} paused by an operator with no resume time",
        "zh": "「{sla}」已被操作员暂停，未设恢复时间",
    },
    "detail_timer_failed": {"en": "timer {timer}: {error}", "zh": "定时器 {timer} 失败：{error}"},
    "detail_no_error": {"en": "no error recorded", "zh": "未记录错误"},
    "detail_timer_late": {"en": "timer {timer} not delivered", "zh": "定时器 {timer} 逾期未送达"},
    "detail_dwelling": {
        "en": "in {state}; 95% of cases leave within {usual}",
        "zh": "停留在「{state}」；95% 的工单在 {usual} 内离开",
    },
    "detail_orphaned_wait": {
        "en": "child {child} ({definition}) could not fire {trigger!r}: {refusal}",
        "zh": "子工单 {child}（{definition}）的消息未能触发「{trigger}」：{refusal}",
    },
    "detail_waiting_on_cancelled": {
        "en": "child case {child} cancelled",
        "zh": "子工单 {child} 已取消",
    },
    "detail_silent_stall": {
        "en": "no activity and no timer armed",
        "zh": "长时间无任何活动，也没有待触发的定时器",
    },
    "open_case_actions": {"en": "Open its actions", "zh": "打开处理页面"},
    "act_timer_not_failed": {
        "en": "Timer {timer} is not a failed timer of case {case_id}: it may have been retried "
        "meanwhile. Reload the list.",
        "zh": "定时器 {timer} 不是工单 {case_id} 的失败定时器，可能已被重试。请刷新列表。",
    },
    "act_unknown_sla": {
        "en": "Case {case_id} has no SLA {sla!r}: open the case to see its clocks.",
        "zh": "工单 {case_id} 没有名为 {sla!r} 的时限，请打开工单查看其时限。",
    },
    "a_timer_id": {"en": "a timer id (digits)", "zh": "定时器编号（数字）"},
    "act_bad_param": {
        "en": "{name}={value!r} is not valid here: use {allowed}.",
        "zh": "{name}={value!r} 无效，请使用 {allowed}。",
    },
    # --- actions -------------------------------------------------------------------------------
    "why": {"en": "Reason (recorded in the case history)", "zh": "原因（将记入工单历史）"},
    "why_placeholder": {"en": "e.g. customer called back", "zh": "例如：客户已回电"},
    "retry_timer": {"en": "Retry timer", "zh": "重试定时器"},
    "fire_trigger": {"en": "Fire trigger", "zh": "触发操作"},
    "trigger": {"en": "Trigger", "zh": "触发"},
    "payload_json": {"en": "Payload (JSON, optional)", "zh": "参数（JSON，可选）"},
    "cancel_case": {"en": "Cancel case", "zh": "取消工单"},
    "pause_sla": {"en": "Pause SLA", "zh": "暂停时限"},
    "resume_at": {"en": "Resume by itself at (optional)", "zh": "自动恢复时间（可选）"},
    "reported_late": {
        "en": "Reported as happened at {happened}, received at {received}",
        "zh": "报告的发生时间 {happened}，接收时间 {received}",
    },
    "counted_elsewhere": {
        "en": "counted at the time shown (outside the bounds of a late report)",
        "zh": "按所示时间计（超出补报时间的界限）",
    },
    "resumes_at": {"en": "Resumes at", "zh": "自动恢复于"},
    "bad_time": {"en": "{value} is not a date and time.", "zh": "{value} 不是有效的日期时间。"},
    "resume_sla": {"en": "Resume SLA", "zh": "恢复时限"},
    "reassign": {"en": "Reassign", "zh": "改派"},
    "assignee": {"en": "New assignee", "zh": "新负责人"},
    "force_state": {"en": "Force state (administrators)", "zh": "强制设置状态（管理员）"},
    "state": {"en": "State", "zh": "状态"},
    "no_triggers": {
        "en": "No trigger is allowed in this state.",
        "zh": "当前状态下没有可触发的操作。",
    },
    # --- webhooks ------------------------------------------------------------------------------
    "webhooks_title": {"en": "Webhook deliveries", "zh": "Webhook 推送"},
    "delivery_pending": {"en": "pending", "zh": "待发送"},
    "delivery_delivered": {"en": "delivered", "zh": "已送达"},
    "delivery_dead": {"en": "dead letters", "zh": "死信"},
    "dead_letters": {
        "en": "Dead letters: failed for 24 hours, no longer retried",
        "zh": "死信：连续失败 24 小时，已停止重试",
    },
    "delivery": {"en": "Delivery", "zh": "推送"},
    "webhook_url": {"en": "Receiver URL", "zh": "接收地址"},
    "redeliver": {"en": "Redeliver", "zh": "重新推送"},
    "redeliver_done": {
        "en": "Delivery {id} will be sent again.",
        "zh": "推送 {id} 将重新发送。",
    },
    "redeliver_failed": {
        "en": "Delivery {id} was not redelivered: {message}",
        "zh": "推送 {id} 未能重新发送：{message}",
    },
    "no_dead_letters": {"en": "No dead letters.", "zh": "没有死信。"},
    # What the receiver answered or the network said: recorded text, quoted after this.
    "delivery_failed_lead": {
        "en": "The last attempt failed: ",
        "zh": "最后一次推送失败，接收方或网络返回：",
    },
    "dead_letters_capped": {
        "en": "The {limit} most recent dead letters are shown.",
        "zh": "仅显示最近的 {limit} 条死信。",
    },
    "action_done": {
        "en": "{action} done on case {case_id}.",
        "zh": "已对工单 {case_id} 执行：{action}。",
    },
    "action_failed": {
        "en": "{action} on case {case_id} was refused: {message}",
        "zh": "对工单 {case_id} 的操作“{action}”被拒绝：{message}",
    },
    "reason_required": {
        "en": "Say why: the reason cannot be blank.",
        "zh": "请填写原因，原因不能为空。",
    },
    "too_long": {
        "en": "{field} is longer than {limit} characters.",
        "zh": "{field} 超过 {limit} 个字符。",
    },
    "bad_text": {"en": "The text has a NUL character.", "zh": "文本包含非法字符。"},
    "bad_payload": {
        "en": "The payload is not a JSON object: {detail}",
        "zh": "参数不是合法的 JSON 对象：{detail}",
    },
    "field_required": {"en": "{field} is required.", "zh": "{field} 为必填项。"},
    "apply": {"en": "Apply", "zh": "执行"},
    "expand_actions": {"en": "Act on it", "zh": "处理"},
    # --- case page -----------------------------------------------------------------------------
    "case_title": {"en": "Case {id}", "zh": "工单 {id}"},
    "definition": {"en": "Workflow", "zh": "流程"},
    "business_key": {"en": "Business key", "zh": "业务编号"},
    "status": {"en": "Status", "zh": "办理状态"},
    "created_at": {"en": "Created", "zh": "创建时间"},
    "updated_at": {"en": "Last activity", "zh": "最近活动"},
    "data": {"en": "Data", "zh": "数据"},
    "parent": {"en": "Parent case", "zh": "上级工单"},
    "children": {"en": "Child cases", "zh": "下级工单"},
    "no_children": {"en": "No child cases.", "zh": "没有下级工单。"},
    "device_file": {"en": "Device file", "zh": "设备档案"},
    "sla_clocks": {"en": "SLA clocks", "zh": "服务时限"},
    "no_slas": {"en": "This workflow has no SLA.", "zh": "该流程没有服务时限。"},
    "elapsed": {"en": "elapsed", "zh": "已用"},
    "round": {"en": "round", "zh": "轮次"},
    "target": {"en": "Target", "zh": "目标"},
    "due": {"en": "due", "zh": "截止"},
    "timers": {"en": "Timers", "zh": "定时器"},
    "no_timers": {"en": "No armed or failed timer.", "zh": "没有待触发或失败的定时器。"},
    "timer": {"en": "Timer", "zh": "定时器"},
    "kind": {"en": "Kind", "zh": "类型"},
    "due_at": {"en": "Due", "zh": "到期时间"},
    "timer_status": {"en": "Status", "zh": "状态"},
    "attempts": {"en": "Attempts", "zh": "尝试次数"},
    "last_error": {"en": "Last error", "zh": "最近错误"},
    "history": {"en": "History", "zh": "历史记录"},
    "seq": {"en": "#", "zh": "序号"},
    "time": {"en": "Time", "zh": "时间"},
    "event": {"en": "Event", "zh": "事件"},
    "transition": {"en": "From → to", "zh": "状态变化"},
    "actor": {"en": "Actor", "zh": "操作人"},
    "changes_reason": {"en": "Changes / reason", "zh": "变更 / 原因"},
    "operator_actions": {"en": "Operator actions", "zh": "监管操作"},
    "case_closed_no_actions": {
        "en": "The case is {status}: it takes no more actions.",
        "zh": "工单状态为“{status}”，不能再执行操作。",
    },
    # --- device file ---------------------------------------------------------------------------
    "device_title": {"en": "Device {serial}", "zh": "设备 {serial}"},
    "device_intro": {
        "en": "One device, one file (R-KPI-01): the device file and every case of this "
        "device, newest first.",
        "zh": "一机一档（R-KPI-01）：设备档案及该设备的全部工单，按时间倒序。",
    },
    "no_device_file": {"en": "No device file has this serial.", "zh": "没有该序列号的设备档案。"},
    "device_cases": {"en": "Cases of this device", "zh": "该设备的工单"},
    "no_device_cases": {"en": "No case names this device.", "zh": "没有关于该设备的工单。"},
    "unknown_device": {
        "en": "Nothing is on file for the serial {serial!r}.",
        "zh": "序列号 {serial!r} 没有任何记录。",
    },
    # --- KPIs ----------------------------------------------------------------------------------
    "kpis_title": {"en": "Monthly KPIs", "zh": "月度考核指标"},
    "kpis_intro": {
        "en": "R-KPI-02: the month's KPIs against their targets, and each KPI over the last "
        "six months. A case belongs to the month it was created in.",
        "zh": "R-KPI-02：本月各项指标与目标对比，以及近六个月趋势。工单按创建月份统计。",
    },
    "month": {"en": "Month", "zh": "月份"},
    "group_by": {"en": "Group by", "zh": "分组"},
    "group_none": {"en": "No grouping", "zh": "不分组"},
    "group_team": {"en": "Team", "zh": "团队"},
    "group_customer": {"en": "Customer", "zh": "客户"},
    "group_device": {"en": "Device", "zh": "设备"},
    "group_contract": {"en": "Contract", "zh": "合同"},
    "kpi_summary_title": {"en": "Targets by {group}", "zh": "各{group}目标达成情况"},
    "kpi_summary_intro": {
        "en": "Did each group meet the bids' targets in {month}? Every figure opens the cases "
        "it counted.",
        "zh": "{month} 各组是否达到投标承诺的目标？点击任一数字可查看其统计的工单。",
    },
    "export_summary": {"en": "Export summary (Excel)", "zh": "导出达标汇总（Excel）"},
    "bad_kpi_outcome": {
        "en": "{outcome!r} is not a drill-down: use counted, met or breached.",
        "zh": "{outcome!r} 不是有效的明细类型，请使用 counted、met 或 breached。",
    },
    "drill_title": {
        "en": "Cases counted in {kpi}, {group}, {month}: {outcome}",
        "zh": "{kpi}（{group}，{month}）统计的工单：{outcome}",
    },
    "drill_counted": {"en": "every case counted", "zh": "全部计入工单"},
    "drill_met": {"en": "met", "zh": "达标"},
    "drill_breached": {"en": "missed", "zh": "未达标"},
    "drill_total": {
        "en": "{total} cases, open and closed.",
        "zh": "共 {total} 件工单（含已办结）。",
    },
    "drill_back": {"en": "Back to the KPIs", "zh": "返回考核指标"},
    "drill_open": {"en": "Open the cases counted", "zh": "查看统计的工单"},
    # --- contracts -----------------------------------------------------------------------------
    "contract": {"en": "Contract", "zh": "服务合同"},
    "all_contracts": {"en": "All contracts", "zh": "全部合同"},
    "no_contract": {"en": "none (the deployment's parameters)", "zh": "无（按系统默认参数）"},
    "contract_terms": {"en": "Contract terms", "zh": "合同条款"},
    "contracts_title": {"en": "Service contracts", "zh": "服务合同"},
    "contract_period": {"en": "In force", "zh": "有效期"},
    "contract_customers": {"en": "Customers", "zh": "客户"},
    "contract_devices": {"en": "Devices", "zh": "设备"},
    "contract_team": {"en": "Team", "zh": "团队"},
    "contract_calendar": {"en": "Calendar", "zh": "工作日历"},
    "contract_version": {"en": "Version", "zh": "版本"},
    "parameter": {"en": "Parameter", "zh": "参数"},
    "compliance_report": {"en": "Compliance report", "zh": "履约报告"},
    "compliance_open": {"en": "Printable report", "zh": "打印版报告"},
    "no_contracts": {
        "en": "No contract is loaded (svcflow contracts load, or svcflow init).",
        "zh": "尚未载入合同（svcflow contracts load 或 svcflow init）。",
    },
    "show": {"en": "Show", "zh": "查看"},
    "kpi_config_missing": {
        "en": "KPIs are not configured: {path} does not exist. The KPI configuration maps "
        "workflows, SLAs and data fields to KPIs; once it is in place this page shows them.",
        "zh": "尚未配置考核指标：{path} 不存在。"
        "该配置文件将流程、服务时限和数据字段映射为指标；配置后本页即可显示。",
    },
    "kpi_config_invalid": {
        "en": "The KPI configuration {path} cannot be read: {detail}",
        "zh": "无法读取考核指标配置 {path}：{detail}",
    },
    "kpi_error": {
        "en": "The KPIs cannot be computed: {detail}",
        "zh": "无法计算考核指标：{detail}",
    },
    "kpi_none": {"en": "No KPI has data this month.", "zh": "本月没有指标数据。"},
    "verdict": {"en": "Against target", "zh": "是否达标"},
    "met": {"en": "met", "zh": "达标"},
    "not_met": {"en": "not met", "zh": "未达标"},
    "no_target": {"en": "no target", "zh": "无目标"},
    "no_data": {"en": "no data", "zh": "无数据"},
    "trend": {"en": "Last six months", "zh": "近六个月趋势"},
    "value": {"en": "Value", "zh": "数值"},
    "counted": {"en": "Counted", "zh": "统计"},
    "group": {"en": "Group", "zh": "分组"},
    "bad_month": {
        "en": "{month!r} is not a month: write YYYY-MM, e.g. 2025-10.",
        "zh": "{month!r} 不是有效月份，请按 YYYY-MM 填写，例如 2025-10。",
    },
    "bad_group": {
        "en": "KPIs cannot be grouped by {group!r}.",
        "zh": "考核指标不能按 {group!r} 分组。",
    },
    "bad_reason": {
        "en": "{reason!r} is not a reason for a stuck case.",
        "zh": "{reason!r} 不是停滞原因。",
    },
    "all_groups": {"en": "(all)", "zh": "（全部）"},
    "no_group": {"en": "(none)", "zh": "（未指定）"},
}

# Reasons a case is stuck (engine/services/inspection.py), with what to do about each.
REASONS: dict[str, Mapping[str, str]] = {
    "sla_breached": {"en": "SLA breached", "zh": "超出服务时限"},
    "sla_warning": {"en": "SLA warning", "zh": "服务时限预警"},
    "sla_paused": {"en": "SLA paused by hand", "zh": "时限被人工暂停"},
    "timer_failed": {"en": "Timer failed", "zh": "定时器失败"},
    "timer_late": {"en": "Timer late", "zh": "定时器延迟"},
    "silent_stall": {"en": "Silent stall", "zh": "无人推进"},
    "dwelling": {"en": "Dwelling too long", "zh": "停留过久"},
    "orphaned_wait": {"en": "Child news not taken", "zh": "下级工单消息未处理"},
    "waiting_on_cancelled": {"en": "Waiting on a cancelled child", "zh": "等待已取消的下级工单"},
}
STRINGS.update(WORKBENCH_WORDS)

REASON_ACTIONS: dict[str, Mapping[str, str]] = {
    "sla_breached": {
        "zh": "立即处理：推进工单的下一步或升级处理；超时已记入历史，可作为扣款依据（R-REP-12）。"
    },
    "sla_warning": {"zh": "在超时前跟进：确认由谁负责、在等待什么。"},
    "sla_paused": {"zh": "被暂停的时限不会自行恢复（除非设置了自动恢复时间）：等待结束后请恢复。"},
    "timer_failed": {"zh": "查看错误，修正原因（数据、条件或流程定义），然后重试定时器。"},
    "timer_late": {
        "zh": "定时任务投递滞后：检查 worker 及调度器是否运行，然后执行 `svcflow timers sweep`。"
    },
    "silent_stall": {"zh": "该工单不会自行推进：请触发下一步、改派或取消。"},
    "dwelling": {"zh": "停留时间已超过该状态 95% 的工单：请查明原因。"},
    "orphaned_wait": {"zh": "下级工单已完成，但上级工单未能接收消息：请手动触发上级工单的下一步。"},
    "waiting_on_cancelled": {"zh": "所依赖的下级工单已取消：请新建一个，或推进上级工单。"},
}

EVENTS: dict[str, Mapping[str, str]] = {
    "created": {"en": "created", "zh": "创建"},
    "transition": {"en": "transition", "zh": "状态变更"},
    "cancelled": {"en": "cancelled", "zh": "已取消"},
    "sla_warning": {"en": "SLA warning", "zh": "时限预警"},
    "sla_breached": {"en": "SLA breached", "zh": "超出时限"},
    "sla_paused": {"en": "SLA paused", "zh": "时限暂停"},
    "sla_resumed": {"en": "SLA resumed", "zh": "时限恢复"},
    "timer_failed": {"en": "timer failed", "zh": "定时器失败"},
    "child_spawned": {"en": "child case opened", "zh": "创建下级工单"},
    "child_attached": {"en": "child case attached", "zh": "关联下级工单"},
    "child_update": {"en": "child news not taken", "zh": "下级工单消息未处理"},
    "forced": {"en": "forced", "zh": "强制设置状态"},
    "reassigned": {"en": "reassigned", "zh": "改派"},
    "timer_retried": {"en": "timer retried", "zh": "重试定时器"},
    "timer_cancelled": {"en": "failed timer dismissed", "zh": "失败定时器已撤销"},
    "migrated": {"en": "moved to another version", "zh": "迁移到新版本"},
}

STATUSES: dict[str, Mapping[str, str]] = {
    # case statuses
    "open": {"en": "open", "zh": "办理中"},
    "completed": {"en": "completed", "zh": "已完成"},
    "cancelled": {"en": "cancelled", "zh": "已取消"},
    # SLA clock statuses
    "pending": {"en": "not started", "zh": "未开始"},
    "running": {"en": "running", "zh": "计时中"},
    "paused": {"en": "paused", "zh": "已暂停"},
    "verdict": {"en": "Against target", "zh": "是否达标"},
    "met": {"en": "met", "zh": "已达成"},
    "breached": {"en": "breached", "zh": "已超时"},
    "not_applicable": {"en": "not applicable", "zh": "不适用"},
    # timer statuses
    "armed": {"en": "armed", "zh": "待触发"},
    "fired": {"en": "fired", "zh": "已触发"},
    "failed": {"en": "failed", "zh": "失败"},
}

# KPIs the engine computes (engine/services/kpis.py); an SLA KPI's name is the configuration's,
# so names not listed here are shown as they are (or with the configuration's own title).
KPIS: dict[str, Mapping[str, str]] = {
    "response_timeliness": {"en": "Response timeliness", "zh": "响应及时率"},
    "first_contact": {"en": "First contact on time", "zh": "首次响应及时率"},
    "on_time_arrival": {"en": "On-time arrival", "zh": "准时到场率"},
    "arrival": {"en": "On-time arrival", "zh": "准时到场率"},
    "timely_resolution": {"en": "Timely resolution", "zh": "及时修复率"},
    "resolution": {"en": "Timely resolution", "zh": "及时修复率"},
    "report_completeness": {"en": "Report completeness", "zh": "服务报告完整率"},
    "service_report": {"en": "Service report on time", "zh": "服务报告及时率"},
    "complex_repair_start": {
        "en": "Complex faults: repair started on time",
        "zh": "复杂故障及时启动维修率",
    },
    "common_part_delivery": {"en": "Common parts on site on time", "zh": "常用备件及时到场率"},
    "fix_rate": {"en": "First-time fix rate", "zh": "一次修复率"},
    "satisfaction": {"en": "Satisfaction", "zh": "满意度"},
    "satisfaction_average": {"en": "Average satisfaction score", "zh": "平均满意度评分"},
    "satisfaction_below_threshold": {"en": "Dissatisfied share", "zh": "不满意占比"},
    "device_uptime": {"en": "Device uptime", "zh": "设备开机率"},
    "complaint_deadlines": {"en": "Complaint deadlines kept", "zh": "投诉处理及时率"},
}


def pick(table: Mapping[str, Mapping[str, str]], key: str, lang: str) -> str:
    """``key`` in ``lang`` from one of the tables, falling back to English, then the key."""
    entry = table.get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry.get("en") or key


def translate(key: str, lang: str, **values: object) -> str:
    text = pick(STRINGS, key, lang)
    return text.format(**values) if values else text
