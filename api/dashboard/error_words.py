"""What each engine error code means, in Chinese, for the dashboard's Chinese pages.

The engine's messages are English and specific (which case, which state, which field); a
Chinese page shows this sentence first and the engine's message after it, so a supervisor
who reads no English still knows what was refused and why. tests/api/test_workbench_pages.py
checks that every error code of engine/errors.py has one.
"""

from __future__ import annotations

ERROR_ZH: dict[str, str] = {
    "action-failed": "流程动作执行失败，本次操作未生效",
    "business-key-taken": "该业务编号已被同一流程的其他工单使用",
    "calendar-error": "工作日历配置有误，或无法按该日历计算时间",
    "case-chain-too-deep": "工单之间的派生与通知层级过深，流程定义可能存在循环",
    "case-closed": "工单已结束或已取消，不能再操作",
    "case-not-found": "找不到该工单",
    "concurrency-conflict": "工单刚被其他操作修改，请刷新后重试",
    "dashboard-form-invalid": "表单填写有误",
    "data-invalid": "工单数据不符合流程定义的要求",
    "database-not-ready": "数据库结构未升级到当前版本",
    "database-unavailable": "暂时无法访问数据库",
    "database-url-invalid": "数据库地址无法识别",
    "definition-invalid": "流程定义未通过校验",
    "definition-not-found": "找不到该流程定义（或其版本、草稿）",
    "definition-too-large": "流程定义超出安全限制",
    "definition-unreadable": "流程定义文本无法解析",
    "duration-invalid": "时长格式有误",
    "expression-error": "条件表达式无法编译或计算",
    "expression-too-costly": "条件表达式过于复杂",
    "guard-rejected": "不满足该操作的前提条件",
    "idempotency-key-reused": "幂等键已用于另一个不同的请求",
    "invalid-trigger": "工单当前状态不允许该操作",
    "kpi-invalid": "指标查询的期间或分组有误",
    "operation-invalid": "该监管操作无法执行",
    "parameter-invalid": "流程参数的名称或类型有误",
    "payload-invalid": "操作参数不符合要求",
    "port-in-use": "端口已被占用",
    "procfile-invalid": "Procfile 配置有误",
    "redis-unavailable": "无法启动内置 Redis",
    "replay-error": "工单历史无法回放",
    "scenario-invalid": "模拟场景文件有误",
    "secret-key-invalid": "会话密钥文件缺失或无效",
    "setting-invalid": "配置项取值有误",
    "timer-not-found": "找不到该定时器",
    "timer-plan-error": "无法计算定时器的到期时间",
    "token-error": "无法按要求创建或吊销 API 令牌",
    "trigger-not-permitted": "当前角色无权执行该操作",
    "version-mismatch": "工单版本已变化，请刷新后重试",
    "workbench-query-invalid": "工作台的筛选、排序或翻页参数有误",
}
