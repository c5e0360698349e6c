"""The API's error texts, in Chinese (the default) and English: one catalogue, key -> {zh, en}.

* :data:`FIELDS`: the Chinese label of each request field and query parameter a clerk may get wrong;
* :data:`VALUES`: allowed values of the enumerations, shown as ``城乡居民（RESIDENT）``;
* :data:`PROBLEMS`: one sentence per validation error type our models can produce (pydantic's own
  types and the custom ones of :mod:`entrypoints.http.models`), with ``{field}`` and the type's context;
* :data:`TEXTS`: the fixed answers (unreadable body, unknown route, wrong method, server error).

:func:`lang_of_header` reads ``Accept-Language``: English only when its first tag is ``en`` or
``en-*``; anything else (missing, ``zh-CN``, ``fr``, garbage, a 100 kB header) gives Chinese.
Codes (``BODY_INVALID``, ``FIELD_MISSING``...) never change with the language.
"""
from __future__ import annotations

import re
from typing import Any

DEFAULT_LANG = "zh"
#: Only this much of an Accept-Language header is looked at (its first tag comes first).
_HEADER_HEAD = 64

FIELDS: dict[str, dict[str, str]] = {
    "body": {"zh": "请求体", "en": "body"},
    "id_type": {"zh": "证件类型", "en": "id_type"}, "id_number": {"zh": "证件号码", "en": "id_number"},
    "name": {"zh": "姓名", "en": "name"}, "scheme": {"zh": "险种", "en": "scheme"},
    "region_code": {"zh": "参保地", "en": "region_code"}, "grid_code": {"zh": "网格", "en": "grid_code"},
    "flexible": {"zh": "灵活就业", "en": "flexible"}, "employer_id": {"zh": "单位编号", "en": "employer_id"},
    "effective_date": {"zh": "生效日期", "en": "effective_date"}, "year": {"zh": "年度", "en": "year"},
    "month": {"zh": "月份", "en": "month"}, "declared_base_fen": {"zh": "缴费基数", "en": "declared_base_fen"},
    "kind": {"zh": "类型", "en": "kind"}, "voucher_no": {"zh": "票证号", "en": "voucher_no"},
    "tax_office": {"zh": "税务机关", "en": "tax_office"},
    "original_voucher_no": {"zh": "原票证号", "en": "original_voucher_no"},
    "original_tax_office": {"zh": "原税务机关", "en": "original_tax_office"},
    "amount_fen": {"zh": "金额", "en": "amount_fen"}, "corrected_at": {"zh": "更正时间", "en": "corrected_at"},
    "reason": {"zh": "原因", "en": "reason"}, "transfer_id": {"zh": "转移单号", "en": "transfer_id"},
    "counterpart_region": {"zh": "对方地区", "en": "counterpart_region"},
    "account_balance_fen": {"zh": "个人账户余额", "en": "account_balance_fen"},
    "contribution_months": {"zh": "缴费月数", "en": "contribution_months"},
    "source_document_no": {"zh": "来源文书号", "en": "source_document_no"},
    "rejected": {"zh": "拒绝转入", "en": "rejected"}, "enrollment_id": {"zh": "参保登记号", "en": "enrollment_id"},
    "reference": {"zh": "业务编号", "en": "reference"},
    "relative_person_id": {"zh": "共济亲属", "en": "relative_person_id"},
    "relative_relationship": {"zh": "亲属关系", "en": "relative_relationship"},
    "category": {"zh": "资助类别", "en": "category"}, "valid_from": {"zh": "认定起始日期", "en": "valid_from"},
    "valid_to": {"zh": "认定终止日期", "en": "valid_to"}, "department": {"zh": "认定部门", "en": "department"},
    "document_no": {"zh": "文书号", "en": "document_no"}, "grant_id": {"zh": "认定文书号", "en": "grant_id"},
    "revoked_from": {"zh": "取消生效日期", "en": "revoked_from"},
    "levy_item": {"zh": "征收品目", "en": "levy_item"}, "period_start": {"zh": "费款所属期起", "en": "period_start"},
    "period_end": {"zh": "费款所属期止", "en": "period_end"}, "paid_at": {"zh": "缴费时间", "en": "paid_at"},
    "credited_on": {"zh": "入库日期", "en": "credited_on"}, "channel": {"zh": "缴费渠道", "en": "channel"},
    "as_of": {"zh": "截至日期", "en": "as_of"}, "on": {"zh": "查询日期", "en": "on"},
    "region": {"zh": "区县", "en": "region"}, "grid": {"zh": "网格", "en": "grid"},
    "q": {"zh": "搜索词", "en": "q"}, "page": {"zh": "页码", "en": "page"}, "per_page": {"zh": "每页行数", "en": "per_page"},
    "limit": {"zh": "行数上限", "en": "limit"}, "sort": {"zh": "排序", "en": "sort"},
    "overdue": {"zh": "仅超期", "en": "overdue"}, "by": {"zh": "汇总方式", "en": "by"},
    "errors": {"zh": "错误报告格式", "en": "errors"}, "person_id": {"zh": "人员编号", "en": "person_id"},
}

VALUES: dict[str, dict[str, str]] = {
    "RESIDENT": {"zh": "城乡居民", "en": "resident scheme"}, "EMPLOYEE": {"zh": "职工", "en": "employee scheme"},
    "LATE_FEE": {"zh": "滞纳金", "en": "late fee"}, "PAYMENT": {"zh": "缴费", "en": "payment"},
    "REFUND": {"zh": "退费", "en": "refund"}, "REVERSAL": {"zh": "冲正", "en": "reversal"},
    "DIED": {"zh": "死亡", "en": "died"}, "MOVED_OUT": {"zh": "迁出", "en": "moved out"},
    "TRANSFERRED_OUT": {"zh": "转出", "en": "transferred out"},
    "SWITCHED_SCHEME": {"zh": "变更险种", "en": "switched scheme"},
    "DUPLICATE_RESOLVED": {"zh": "重复参保清理", "en": "duplicate resolved"},
    "CONTRIBUTION": {"zh": "缴费划入", "en": "contribution"}, "RETIREE_CREDIT": {"zh": "退休人员划入", "en": "retiree credit"},
    "TRANSFER_IN": {"zh": "转移转入", "en": "transfer in"}, "MEDICAL_EXPENSE": {"zh": "医疗支出", "en": "medical expense"},
    "FAMILY_MUTUAL_AID": {"zh": "家庭共济", "en": "family mutual aid"}, "CORRECTION": {"zh": "更正", "en": "correction"},
    "row": {"zh": "逐笔", "en": "per row"}, "employer": {"zh": "按单位", "en": "per employer"},
    "xlsx": {"zh": "Excel 错误工作簿", "en": "error workbook"},
}

_S = "{field}"
PROBLEMS: dict[str, dict[str, str]] = {
    "missing": {"zh": f"缺少必填项：{_S}", "en": f"{_S}: is required"},
    "extra_forbidden": {"zh": f"{_S}不是本请求的字段，请删除或检查拼写",
                        "en": f"{_S}: is not a field of this request; remove it or check its spelling"},
    "json_invalid": {"zh": "请求体不是合法的 JSON，请发送一个包含本请求字段的 JSON 对象",
                     "en": "the body is not valid JSON ({error})"},
    "model_attributes_type": {"zh": "请求体应为一个 JSON 对象（{{...}}），包含本请求的字段",
                              "en": f"{_S}: must be a JSON object with the fields of this request"},
    "dict_type": {"zh": f"{_S}应为 JSON 对象", "en": f"{_S}: must be a JSON object"},
    "model_type": {"zh": f"{_S}应为 JSON 对象", "en": f"{_S}: must be a JSON object"},
    "string_type": {"zh": f"{_S}应为文字（字符串）", "en": f"{_S}: must be text (a JSON string)"},
    "string_too_short": {"zh": f"{_S}不能为空，至少 {{min_length}} 个字符",
                         "en": f"{_S}: must have at least {{min_length}} character(s)"},
    "string_too_long": {"zh": f"{_S}过长：最多 {{max_length}} 个字符",
                        "en": f"{_S}: must have at most {{max_length}} characters"},
    "string_pattern_mismatch": {"zh": f"{_S}格式不对：{{shape}}", "en": f"{_S}: has the wrong shape: {{pattern}} expected"},
    "int_type": {"zh": f"{_S}应为整数", "en": f"{_S}: must be a whole number"},
    "int_parsing": {"zh": f"{_S}应为整数", "en": f"{_S}: must be a whole number"},
    "int_from_float": {"zh": f"{_S}应为整数，不能有小数", "en": f"{_S}: must be a whole number, without a fraction"},
    "bool_type": {"zh": f"{_S}应为 true 或 false", "en": f"{_S}: must be true or false"},
    "bool_parsing": {"zh": f"{_S}应为 true 或 false", "en": f"{_S}: must be true or false"},
    "greater_than": {"zh": f"{_S}应大于 {{gt}}", "en": f"{_S}: must be greater than {{gt}}"},
    "greater_than_equal": {"zh": f"{_S}不能小于 {{ge}}", "en": f"{_S}: must be at least {{ge}}"},
    "less_than": {"zh": f"{_S}应小于 {{lt}}", "en": f"{_S}: must be less than {{lt}}"},
    "less_than_equal": {"zh": f"{_S}不能大于 {{le}}", "en": f"{_S}: must be at most {{le}}"},
    "literal_error": {"zh": f"{_S}只能是以下之一：{{choices}}", "en": f"{_S}: must be one of {{choices}}"},
    "enum": {"zh": f"{_S}只能是以下之一：{{choices}}", "en": f"{_S}: must be one of {{choices}}"},
    "list_type": {"zh": f"{_S}应为列表", "en": f"{_S}: must be a list"},
    "too_long": {"zh": f"{_S}的条目过多：最多 {{max_length}} 条", "en": f"{_S}: at most {{max_length}} items"},
    "date_invalid": {"zh": f"{_S}应为日期，格式 YYYY-MM-DD，例如 2025-01-01；收到 {{value}}",
                     "en": f"{_S}: must be a calendar date written YYYY-MM-DD, e.g. 2025-01-01; got {{value}}"},
    "instant_invalid": {"zh": f"{_S}应为带时区的日期时间，例如 2024-10-08T09:30:00+08:00；收到 {{value}}",
                        "en": f"{_S}: must be a date and time with a time zone, e.g. 2024-10-08T09:30:00+08:00; "
                              f"got {{value}}"},
    "date_any": {"zh": f"{_S}应为日期，格式 YYYY-MM-DD，例如 2025-01-01",
                 "en": f"{_S}: must be a calendar date written YYYY-MM-DD, e.g. 2025-01-01"},
    "amount_not_integer_fen": {"zh": f"{_S}应为整数分（JSON 整数，如 40000 表示 400.00 元），不能是小数、文字或 true/false",
                               "en": f"{_S}: {{detail}}"},
    "amount_not_positive": {"zh": f"{_S}应大于 0 分", "en": f"{_S}: {{detail}}"},
    "amount_too_large": {"zh": f"{_S}超过政策允许的上限", "en": f"{_S}: {{detail}}"},
    "date_out_of_range": {"zh": f"{_S}超出合理的业务日期范围，请检查年份", "en": f"{_S}: {{detail}}"},
    "value_error": {"zh": f"{_S}的值不符合要求", "en": f"{_S}: {{detail}}"},
    "other": {"zh": f"{_S}的值不符合要求", "en": f"{_S}: {{detail}}"},
}

#: Readable shapes for the patterns our models declare (others: "格式见 /docs").
SHAPES: dict[str, dict[str, str]] = {
    r"^\d{6}$": {"zh": "应为 6 位行政区划代码", "en": "6 digits"},
    r"^\d{12}$": {"zh": "应为 12 位网格（村/社区）代码", "en": "12 digits"},
    r"^\d{4}-\d{2}$": {"zh": "应为年月，格式 YYYY-MM，例如 2025-01", "en": "YYYY-MM"},
}

TEXTS: dict[str, dict[str, str]] = {
    "more": {"zh": "（另有 {n} 处问题）", "en": " (and {n} more problem{s})"},
    "invalid": {"zh": "请求不符合要求", "en": "the request is not valid"},
    "unreadable": {"zh": "无法读取请求体；请发送一个包含本请求字段的 JSON 对象",
                   "en": "the body could not be read; send one JSON object with the fields of this request"},
    "not_found": {"zh": "没有此地址 {path}；可用的地址见 /docs", "en": "there is no route {path}; see /docs for the routes"},
    "method": {"zh": "此地址不接受 {method} 请求；可用的方法见 /docs",
               "en": "this route does not take {method}; see /docs for the routes"},
    "refused": {"zh": "请求被拒绝（HTTP {status}）", "en": "request refused (HTTP {status})"},
    "internal": {"zh": "系统暂时无法应答；请将请求编号 {request_id} 告知系统管理员",
                 "en": "the ledger could not answer; quote request id {request_id} to the administrators"},
}

_TAG = re.compile(r"[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*")


def lang_of_header(value: str | None) -> str:
    """``en`` when the first language tag of an Accept-Language header is English, else ``zh``."""
    first = (value or "")[:_HEADER_HEAD].split(",", 1)[0].split(";", 1)[0].strip()
    if not _TAG.fullmatch(first):
        return DEFAULT_LANG
    tag = first.lower().replace("_", "-")
    return "en" if tag == "en" or tag.startswith("en-") else DEFAULT_LANG


def field_label(field: str, lang: str) -> str:
    """``姓名（name）`` in Chinese (the key alone when no label is known), the key in English."""
    last = field.rsplit(".", 1)[-1]
    label = FIELDS.get(last, {}).get("zh")
    if lang == "en":
        return field
    if field == "body":
        return "请求体"
    return f"{label}（{field}）" if label else field


def value_label(value: str, lang: str) -> str:
    """``城乡居民（RESIDENT）`` in Chinese, ``'RESIDENT'`` in English."""
    if lang == "en":
        return repr(value)
    label = VALUES.get(value, {}).get("zh")
    return f"{label}（{value}）" if label else value


def choices(values: list[str], lang: str) -> str:
    shown = [value_label(v, lang) for v in values]
    return "、".join(shown) if lang != "en" else ", ".join(shown[:-1]) + (" or " if len(shown) > 1 else "") + shown[-1]


def shape(pattern: str, lang: str) -> str:
    return SHAPES.get(pattern, {}).get(lang, "格式见 /docs" if lang != "en" else pattern)


def text(key: str, lang: str, **values: Any) -> str:
    return TEXTS[key][lang].format(**values)


__all__ = ["DEFAULT_LANG", "FIELDS", "PROBLEMS", "SHAPES", "TEXTS", "VALUES", "choices", "field_label",
           "lang_of_header", "shape", "text", "value_label"]
