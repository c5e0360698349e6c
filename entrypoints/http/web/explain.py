"""One person's entitlement in Chinese words for the grid worker (是否参保、为什么).

:func:`explain_entitlement` reads the answer of the entitlement route
(``GET /persons/{id_type}/{id_number}/entitlement``: the decision for one day, the
resident-year row, the employee year and the person's summary) and says the same
figures as short Chinese sentences, with what the grid worker can do next. It adds no
figure of its own: every number comes from the answer, so the page and the API agree.
"""
from __future__ import annotations

from typing import Any, Mapping

from entrypoints.http.web import labels


def _day(value: Any) -> str:
    return "" if value is None else str(value)[:10]


def _line(topic: str, text: str) -> dict[str, str]:
    return {"topic": topic, "text": text}


def _in_waiting(ry: Mapping[str, Any] | None, on: str) -> bool:
    return bool(ry and ry.get("waiting_until") and ry.get("funded") and on <= _day(ry["waiting_until"]))


def _headline(answer: Mapping[str, Any], ry: Mapping[str, Any] | None, on: str) -> str:
    year = answer["year"]
    if answer.get("covered"):
        return f"{on}：已参保，享受医保待遇（{labels.scheme(answer.get('scheme'))}）"
    if _in_waiting(ry, on):
        return f"{on}：已缴费，处于待遇等待期，{_day(ry['coverage_start'])} 起享受待遇"  # type: ignore[index]
    if ry and (ry.get("outstanding_fen") or 0) > 0:
        return f"{on}：{year} 年参保费未缴清，不能享受医保待遇"
    if not answer.get("resident_year") and not answer.get("employee_year"):
        return f"{on}：{year} 年未参保，不能享受医保待遇"
    return f"{on}：不能享受医保待遇"


def _grid(answer: Mapping[str, Any], code: str | None) -> str:
    """``610902100001（汉滨区 关庙镇 · 关庙社区）`` when the answer's ``place_labels`` names the grid, else the code."""
    if not code:
        return "未登记"
    label = (answer.get("place_labels") or {}).get(code)
    return f"{code}（{label}）" if label and code not in label else code


def _enrollment(answer: Mapping[str, Any], ry: Mapping[str, Any] | None) -> str:
    summary = answer.get("summary") or {}
    if ry and ry.get("enrollment_id"):
        text = (f"{labels.scheme(ry.get('scheme'))}，参保地 {labels.region(ry.get('region_code'))}，"
                f"网格 {_grid(answer, ry.get('grid_code'))}，{_day(ry.get('enrollment_start'))} 起参保")
        if ry.get("enrollment_end"):
            text += f"，{_day(ry['enrollment_end'])} 终止（{labels.end_reason(ry.get('enrollment_end_reason'))}）"
        return text
    enrollment = summary.get("enrollment")
    if enrollment:
        return (f"{labels.scheme(enrollment.get('scheme'))}，参保地 {labels.region(enrollment.get('region_code'))}，"
                f"网格 {_grid(answer, enrollment.get('grid_code'))}，{_day(enrollment.get('start_date'))} 起参保")
    return "账本中没有有效的参保登记"


def _payment(year: int, ry: Mapping[str, Any]) -> str:
    if ry.get("assessed"):
        text = f"{year} 年个人应缴 {labels.yuan(ry.get('due_fen'))} 元（缴费标准 {labels.yuan(ry.get('standard_fen'))} 元"
        if ry.get("subsidy_fen"):
            text += f"，资助 {labels.yuan(ry['subsidy_fen'])} 元"
        text += f"），缴费期限 {_day(ry.get('due_date'))}；已缴 {labels.yuan(ry.get('net_paid_fen') or 0)} 元"
    else:
        text = f"{year} 年尚未核定缴费；已缴 {labels.yuan(ry.get('net_paid_fen') or 0)} 元"
    if ry.get("funded_on"):
        text += f"（{_day(ry['funded_on'])} 缴足）"
    if ry.get("refunded_fen"):
        text += f"，已退费 {labels.yuan(ry['refunded_fen'])} 元"
    if ry.get("reversed_fen"):
        text += f"，冲正 {labels.yuan(ry['reversed_fen'])} 元"
    if (ry.get("outstanding_fen") or 0) > 0:
        text += f"，欠缴 {labels.yuan(ry['outstanding_fen'])} 元"
    if (ry.get("overpayment_fen") or 0) > 0:
        text += f"，多缴 {labels.yuan(ry['overpayment_fen'])} 元待退费"
    return text


def _subsidy(ry: Mapping[str, Any] | None, summary: Mapping[str, Any]) -> str | None:
    parts = []
    if ry and ry.get("subsidy_category"):
        parts.append(f"本年按「{labels.subsidy_category(ry['subsidy_category'])}」资助"
                     + (f"（{_day(ry.get('subsidy_since'))} 起）" if ry.get("subsidy_since") else ""))
    for status in summary.get("subsidy_statuses") or []:
        until = _day(status.get("valid_until")) or "今"
        source = "，".join(x for x in (status.get("document_no"), status.get("department")) if x)
        parts.append(f"{labels.subsidy_category(status.get('category'))}：{_day(status.get('valid_from'))} 至 {until}"
                     + (f"（{source}）" if source else ""))
    return "；".join(parts) or None


def _waiting(ry: Mapping[str, Any]) -> str | None:
    exemption = ry.get("waiting_exemption")
    months = ry.get("waiting_months")
    if not months:
        return f"免待遇等待期（{labels.waiting_exemption(exemption)}）" if exemption else None
    facts = []
    if ry.get("funded_on"):
        facts.append(f"{_day(ry['funded_on'])} 缴费")
    if ry.get("first_time"):
        facts.append("首次参保")
    elif ry.get("gap_years"):
        facts.append(f"此前连续 {ry['gap_years']} 年未参保")
        if ry.get("back_paid_years"):
            facts.append(f"已补缴 {ry['back_paid_years']} 年")
    text = f"{months} 个月，至 {_day(ry.get('waiting_until'))} 止，{_day(ry.get('coverage_start'))} 起享受待遇"
    return text + (f"（{'，'.join(facts)}）" if facts else "") + (f"。{ry['history_note']}" if ry.get("history_note") else "")


def _advice(answer: Mapping[str, Any], ry: Mapping[str, Any] | None, on: str, subsidised: bool) -> str | None:
    summary = answer.get("summary") or {}
    if answer.get("covered"):
        return None
    if (ry and ry.get("duplicate_enrollment")) or summary.get("duplicate_enrollment"):
        advice = "请联系医保经办机构清理重复参保。"
    elif answer.get("transfers") or summary.get("open_transfers"):
        late = any(t.get("overdue") for t in answer.get("transfers") or [])
        advice = ("转移接续已超过办理时限，" if late else "") + "请联系转出地和转入地医保经办机构完成转移接续。"
    elif _in_waiting(ry, on):
        advice = "已缴费，等待期满后自动享受待遇；等待期内发生的医疗费用医保基金不予支付。"
    elif ry and (ry.get("outstanding_fen") or 0) > 0:
        advice = f"请提醒其缴纳欠缴的 {labels.yuan(ry['outstanding_fen'])} 元（税务 App 或办税服务厅）。"
    elif not summary.get("enrollment"):
        advice = "请协助其办理参保登记并缴费。"
    else:
        advice = "请联系医保经办机构核实参保缴费情况。"
    return ("资助参保对象须应保尽保，请优先跟进。" + advice) if subsidised else advice


def explain_entitlement(answer: Mapping[str, Any]) -> dict[str, Any]:
    """``{"headline", "lines": [{"topic", "text"}], "advice"}``: the entitlement answer in Chinese.

    ``answer`` is what the entitlement route returns (dates as ``date`` or ISO text).
    ``advice`` is None when the person is covered.
    """
    year = answer["year"]
    on = _day(answer.get("on"))
    ry = answer.get("resident_year")
    ey = answer.get("employee_year")
    summary = answer.get("summary") or {}
    lines = [_line("参保登记", _enrollment(answer, ry))]
    if ry:
        lines.append(_line("缴费", _payment(year, ry)))
    elif not ey:
        lines.append(_line("缴费", f"账本中没有 {year} 年的缴费记录"))
    subsidy = _subsidy(ry, summary)
    if subsidy:
        lines.append(_line("资助参保", subsidy))
    if ry:
        periods = "、".join(f"{_day(a)} 至 {_day(b)}" for a, b in ry.get("coverage_periods") or [])
        lines.append(_line("待遇享受期", periods or f"{year} 年尚无待遇享受期"))
        waiting = _waiting(ry)
        if waiting:
            lines.append(_line("待遇等待期", waiting))
        continuity = f"连续参保 {ry.get('continuous_years') or 0} 年"
        if ry.get("cap_increment_fen"):
            continuity += f"，大病保险最高支付限额提高 {labels.yuan(ry['cap_increment_fen'])} 元"
        lines.append(_line("连续参保", continuity))
    if ey:
        text = (f"{year} 年核定 {ey.get('months_assessed', 0)} 个月，享受待遇 {ey.get('months_covered', 0)} 个月；"
                f"应缴 {labels.yuan(ey.get('due_fen') or 0)} 元，已缴 {labels.yuan(ey.get('net_paid_fen') or 0)} 元")
        if (ey.get("outstanding_fen") or 0) > 0:
            text += f"，欠缴 {labels.yuan(ey['outstanding_fen'])} 元"
        lines.append(_line("职工医保", text))
    if (ry and ry.get("duplicate_enrollment")) or summary.get("duplicate_enrollment"):
        lines.append(_line("重复参保", "同时存在两条有效的参保登记，需经办机构清理"))
    if answer.get("transfers"):  # each open transfer's state on the day, computed when read
        lines.append(_line("转移接续", "；".join(
            f"转移单 {t['transfer_id']} {t.get('label') or labels.transfer_state(t)}"
            + (f"（须于 {_day(t.get('due_on'))} 前办结）" if t.get("due_on") and not t.get("overdue") else "")
            for t in answer["transfers"])))
    elif summary.get("open_transfers"):
        lines.append(_line("转移接续", f"有 {len(summary['open_transfers'])} 笔转出尚未完成转入"))
    if answer.get("policy_version"):
        lines.append(_line("政策依据", f"政策版本 {answer['policy_version']}"))
    subsidised = bool(ry and ry.get("subsidy_category")) or any(
        _day(s.get("valid_from")) <= on and (s.get("valid_until") is None or on <= _day(s["valid_until"]))
        for s in summary.get("subsidy_statuses") or [])
    return {"headline": _headline(answer, ry, on), "lines": lines, "advice": _advice(answer, ry, on, subsidised)}


__all__ = ["explain_entitlement"]
