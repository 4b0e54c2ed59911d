"""The workbench's words in Chinese and English (merged into i18n.STRINGS, which the tests
check for both languages)."""

from __future__ import annotations

from collections.abc import Mapping

WORKBENCH_WORDS: dict[str, Mapping[str, str]] = {
    "nav_workbench": {"en": "Workbench", "zh": "工作台"},
    "yes": {"en": "yes", "zh": "是"},
    "kpi_column": {"en": "KPI", "zh": "指标"},
    "kpi_group": {"en": "Group", "zh": "分组"},
    "kpi_counted": {"en": "Counted", "zh": "计数"},
    "kpi_value": {"en": "Value", "zh": "数值"},
    "verdict_column": {"en": "Against target", "zh": "是否达标"},
    "export_kpis": {"en": "Export Excel", "zh": "导出 Excel"},
    "no": {"en": "no", "zh": "否"},
    "skip_to_content": {"en": "Skip to the page's content", "zh": "跳到正文"},
    "workbench_title": {"en": "Case workbench", "zh": "工单工作台"},
    "workbench_intro": {
        "en": "Open cases, most urgent first. The filter is in the address: bookmark a view "
        "to come back to it.",
        "zh": "在办工单，最紧急的排在最前。筛选条件保存在网址中，可收藏常用视图。",
    },
    "customer": {"en": "Customer", "zh": "客户"},
    "team": {"en": "Team", "zh": "团队"},
    "assignee_column": {"en": "Assignee", "zh": "负责人"},
    "priority": {"en": "Priority", "zh": "优先级"},
    "urgent_sla": {"en": "Most urgent SLA", "zh": "最紧急时限"},
    "due_in_column": {"en": "Due in / overdue by", "zh": "剩余 / 超时"},
    "stuck_reason": {"en": "Stuck", "zh": "停滞原因"},
    "any": {"en": "Any", "zh": "全部"},
    "sort_by": {"en": "Sort by", "zh": "排序"},
    "descending": {"en": "descending", "zh": "倒序"},
    "page_size": {"en": "Rows per page", "zh": "每页行数"},
    "sort_urgency": {"en": "urgency", "zh": "紧急程度"},
    "sort_updated": {"en": "last activity", "zh": "最近活动"},
    "sort_created": {"en": "created", "zh": "创建时间"},
    "sort_business_key": {"en": "business key", "zh": "业务编号"},
    "sort_customer": {"en": "customer", "zh": "客户"},
    "sort_team": {"en": "team", "zh": "团队"},
    "sort_assignee": {"en": "assignee", "zh": "负责人"},
    "sort_priority": {"en": "priority", "zh": "优先级"},
    "sort_state": {"en": "state", "zh": "状态"},
    "sort_definition": {"en": "workflow", "zh": "流程"},
    "due_in": {"en": "due in {time}", "zh": "剩余 {time}"},
    "overdue_by": {"en": "overdue by {time}", "zh": "已超时 {time}"},
    "paused_at_share": {"en": "paused", "zh": "已暂停"},
    "no_open_sla": {"en": "no open SLA", "zh": "无进行中的时限"},
    "matched_cases": {"en": "{total} open cases match.", "zh": "共 {total} 件在办工单符合条件。"},
    "no_cases": {"en": "No open case matches.", "zh": "没有符合条件的在办工单。"},
    "next_page": {"en": "Next page", "zh": "下一页"},
    "first_page": {"en": "First page", "zh": "第一页"},
    "export_csv": {"en": "Export CSV", "zh": "导出 CSV"},
    "export_xlsx": {"en": "Export Excel", "zh": "导出 Excel"},
    "clear_filters": {"en": "Clear", "zh": "清除"},
    "select_case": {"en": "Select case {id}", "zh": "选择工单 {id}"},
    "load_actions": {"en": "Actions", "zh": "操作"},
    "open_case": {"en": "Open the case", "zh": "打开工单"},
    "loading": {"en": "Loading…", "zh": "加载中…"},
    "bad_sort": {
        "en": "{sort!r} is not a sort: choose one of {choices}.",
        "zh": "{sort!r} 不是可用的排序方式：请选择 {choices} 之一。",
    },
    "bad_size": {"en": "{size!r} is not a page size.", "zh": "{size!r} 不是有效的每页行数。"},
    "find_title": {"en": "Customers matching {query!r}", "zh": "与 {query!r} 匹配的客户"},
    "find_intro": {
        "en": "Several customers of open cases match; choose one to see its cases.",
        "zh": "有多个在办工单的客户与之匹配，请选择一个查看其工单。",
    },
    "confirm_case": {
        "en": "Yes, case {id}: this cannot be undone",
        "zh": "确认对工单 {id} 执行（不可撤销）",
    },
    "confirm_required": {
        "en": "Tick the confirmation box: cancelling or forcing a case cannot be undone.",
        "zh": "请勾选确认框：取消或强制设置工单状态后无法撤销。",
    },
    # --- bulk actions --------------------------------------------------------------------------
    "bulk_title": {"en": "Act on many cases", "zh": "批量处理"},
    "bulk_action": {"en": "Action", "zh": "操作"},
    "bulk_targets": {"en": "On", "zh": "对象"},
    "bulk_selected": {"en": "the selected cases", "zh": "所选工单"},
    "bulk_filter": {"en": "every case of this filter", "zh": "当前筛选的全部工单"},
    "bulk_preview": {"en": "Preview (changes nothing)", "zh": "预览（不做任何更改）"},
    "bulk_preview_title": {"en": "Confirm the bulk action", "zh": "确认批量操作"},
    "bulk_preview_intro": {
        "en": "Nothing has been done yet. {action} will be applied to these {count} cases, "
        "each in its own savepoint: a case that refuses is reported and left as it is.",
        "zh": "尚未执行任何操作。将对以下 {count} 件工单执行“{action}”，逐件处理："
        "被拒绝的工单会单独报告并保持不变。",
    },
    "bulk_more": {
        "en": "{total} cases match; the first {count} are listed. Run it again for the rest.",
        "zh": "共 {total} 件符合条件，仅列出前 {count} 件；其余请再次执行。",
    },
    "bulk_confirm": {"en": "Confirm: apply to {count} cases", "zh": "确认：对 {count} 件工单执行"},
    "bulk_nothing_selected": {
        "en": "Select at least one case, or choose every case of the filter.",
        "zh": "请至少选择一件工单，或选择当前筛选的全部工单。",
    },
    "bulk_done": {
        "en": "{action}: {done} done, {failed} refused.",
        "zh": "{action}：成功 {done} 件，被拒绝 {failed} 件。",
    },
    "bulk_refused_case": {
        "en": "Case {case_id} refused: {message}",
        "zh": "工单 {case_id} 被拒绝：{message}",
    },
    "bulk_unknown_action": {
        "en": "{action!r} is not a bulk action.",
        "zh": "{action!r} 不是可用的批量操作。",
    },
    "bulk_fire": {"en": "Fire a trigger", "zh": "触发操作"},
    "bulk_cancel": {"en": "Cancel", "zh": "取消工单"},
    "bulk_reassign": {"en": "Reassign", "zh": "改派"},
    "bulk_pause_sla": {"en": "Pause an SLA", "zh": "暂停时限"},
    "bulk_resume_sla": {"en": "Resume an SLA", "zh": "恢复时限"},
    "bulk_force": {"en": "Force a state (administrators)", "zh": "强制设置状态（管理员）"},
    "bulk_param_trigger": {"en": "Trigger (for fire)", "zh": "触发（用于触发操作）"},
    "bulk_param_sla": {"en": "SLA (for pause and resume)", "zh": "时限（用于暂停与恢复）"},
    "bulk_param_state": {"en": "State (for force)", "zh": "状态（用于强制设置）"},
    "bulk_param_assignee": {"en": "Assignee (for reassign)", "zh": "负责人（用于改派）"},
}
