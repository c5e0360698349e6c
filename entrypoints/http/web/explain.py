"""One person's entitlement in plain words for the grid worker (是否参保、为什么), Chinese by default.

:func:`explain_entitlement` reads the answer of the entitlement route
(``GET /persons/{id_type}/{id_number}/entitlement``: the decision for one day, the
resident-year row, the employee year and the person's summary) and says the same
figures as short sentences, with what the grid worker can do next. It adds no
figure of its own: every number comes from the answer, so the page and the API agree.
The sentences are the catalogue's ``[web_explain]`` in the reader's language (``lang``);
data (place names, document numbers, departments, the domain's history note) is not translated.
"""
from __future__ import annotations

from typing import Any, Mapping

from entrypoints import catalogue
from entrypoints.catalogue import DEFAULT_LANG
from entrypoints.http.web import labels

SECTION = "web_explain"


class _Say:
    """The sentences of ``[web_explain]`` in one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __call__(self, key: str, **values: Any) -> str:
        return catalogue.text(SECTION, key, self.lang, **values)


def _day(value: Any) -> str:
    return "" if value is None else str(value)[:10]


def _line(say: _Say, topic: str, text: str) -> dict[str, str]:
    return {"topic": say(f"topic_{topic}"), "text": text}


def _in_waiting(ry: Mapping[str, Any] | None, on: str) -> bool:
    return bool(ry and ry.get("waiting_until") and ry.get("funded") and on <= _day(ry["waiting_until"]))


def _headline(say: _Say, answer: Mapping[str, Any], ry: Mapping[str, Any] | None, on: str) -> str:
    year = answer["year"]
    if answer.get("covered"):
        return say("head_covered", on=on, scheme=labels.scheme(answer.get("scheme"), say.lang))
    if _in_waiting(ry, on):
        return say("head_waiting", on=on, start=_day(ry["coverage_start"]))  # type: ignore[index]
    if ry and (ry.get("outstanding_fen") or 0) > 0:
        return say("head_unpaid", on=on, year=year)
    if not answer.get("resident_year") and not answer.get("employee_year"):
        return say("head_not_enrolled", on=on, year=year)
    return say("head_not_covered", on=on)


def _grid(say: _Say, answer: Mapping[str, Any], code: str | None) -> str:
    """``610902100001（汉滨区 关庙镇 · 关庙社区）`` when the answer's ``place_labels`` names the grid, else the code."""
    if not code:
        return say("grid_none")
    label = (answer.get("place_labels") or {}).get(code)
    return say("grid_named", code=code, label=label) if label and code not in label else code


def _enrollment(say: _Say, answer: Mapping[str, Any], ry: Mapping[str, Any] | None) -> str:
    summary = answer.get("summary") or {}
    lang = say.lang
    if ry and ry.get("enrollment_id"):
        text = say("enrollment", scheme=labels.scheme(ry.get("scheme"), lang), region=labels.region(ry.get("region_code")),
                   grid=_grid(say, answer, ry.get("grid_code")), start=_day(ry.get("enrollment_start")))
        if ry.get("enrollment_end"):
            text += say("enrollment_end", end=_day(ry["enrollment_end"]),
                        reason=labels.end_reason(ry.get("enrollment_end_reason"), lang))
        return text
    enrollment = summary.get("enrollment")
    if enrollment:
        return say("enrollment", scheme=labels.scheme(enrollment.get("scheme"), lang),
                   region=labels.region(enrollment.get("region_code")),
                   grid=_grid(say, answer, enrollment.get("grid_code")), start=_day(enrollment.get("start_date")))
    return say("enrollment_none")


def _payment(say: _Say, year: int, ry: Mapping[str, Any]) -> str:
    yuan = labels.yuan
    paid = yuan(ry.get("net_paid_fen") or 0)
    if ry.get("assessed"):
        text = say("pay_assessed", year=year, due=yuan(ry.get("due_fen")), standard=yuan(ry.get("standard_fen")))
        if ry.get("subsidy_fen"):
            text += say("pay_subsidy", subsidy=yuan(ry["subsidy_fen"]))
        text += say("pay_due", due_date=_day(ry.get("due_date")), paid=paid)
    else:
        text = say("pay_not_assessed", year=year, paid=paid)
    if ry.get("funded_on"):
        text += say("pay_funded", on=_day(ry["funded_on"]))
    if ry.get("refunded_fen"):
        text += say("pay_refunded", amount=yuan(ry["refunded_fen"]))
    if ry.get("reversed_fen"):
        text += say("pay_reversed", amount=yuan(ry["reversed_fen"]))
    if (ry.get("outstanding_fen") or 0) > 0:
        text += say("pay_outstanding", amount=yuan(ry["outstanding_fen"]))
    if (ry.get("overpayment_fen") or 0) > 0:
        text += say("pay_overpaid", amount=yuan(ry["overpayment_fen"]))
    return text


def _subsidy(say: _Say, ry: Mapping[str, Any] | None, summary: Mapping[str, Any]) -> str | None:
    parts = []
    if ry and ry.get("subsidy_category"):
        parts.append(say("subsidy_year", category=labels.subsidy_category(ry["subsidy_category"], say.lang))
                     + (say("subsidy_since", since=_day(ry.get("subsidy_since"))) if ry.get("subsidy_since") else ""))
    for status in summary.get("subsidy_statuses") or []:
        until = _day(status.get("valid_until")) or say("subsidy_until_now")
        source = say("item_sep").join(x for x in (status.get("document_no"), status.get("department")) if x)
        parts.append(say("subsidy_status", category=labels.subsidy_category(status.get("category"), say.lang),
                         start=_day(status.get("valid_from")), until=until)
                     + (say("subsidy_source", source=source) if source else ""))
    return say("list_sep").join(parts) or None


def _waiting(say: _Say, ry: Mapping[str, Any]) -> str | None:
    exemption = ry.get("waiting_exemption")
    months = ry.get("waiting_months")
    if not months:
        return say("waiting_exempt", exemption=labels.waiting_exemption(exemption, say.lang)) if exemption else None
    facts = []
    if ry.get("funded_on"):
        facts.append(say("waiting_paid", on=_day(ry["funded_on"])))
    if ry.get("first_time"):
        facts.append(say("waiting_first_time"))
    elif ry.get("gap_years"):
        facts.append(say("waiting_gap", years=ry["gap_years"]))
        if ry.get("back_paid_years"):
            facts.append(say("waiting_back_paid", years=ry["back_paid_years"]))
    text = say("waiting", months=months, until=_day(ry.get("waiting_until")), start=_day(ry.get("coverage_start")))
    return (text + (say("waiting_facts", facts=say("item_sep").join(facts)) if facts else "")
            + (say("waiting_note", note=ry["history_note"]) if ry.get("history_note") else ""))


def _advice(say: _Say, answer: Mapping[str, Any], ry: Mapping[str, Any] | None, on: str, subsidised: bool) -> str | None:
    summary = answer.get("summary") or {}
    if answer.get("covered"):
        return None
    if (ry and ry.get("duplicate_enrollment")) or summary.get("duplicate_enrollment"):
        advice = say("advice_duplicate")
    elif answer.get("transfers") or summary.get("open_transfers"):
        late = any(t.get("overdue") for t in answer.get("transfers") or [])
        advice = (say("advice_transfer_late") if late else "") + say("advice_transfer")
    elif _in_waiting(ry, on):
        advice = say("advice_waiting")
    elif ry and (ry.get("outstanding_fen") or 0) > 0:
        advice = say("advice_unpaid", amount=labels.yuan(ry["outstanding_fen"]))
    elif not summary.get("enrollment"):
        advice = say("advice_enroll")
    else:
        advice = say("advice_check")
    return (say("advice_subsidised") + advice) if subsidised else advice


def explain_entitlement(answer: Mapping[str, Any], lang: str = DEFAULT_LANG) -> dict[str, Any]:
    """``{"headline", "lines": [{"topic", "text"}], "advice"}``: the entitlement answer in words (``lang``:
    ``zh``, the default, or ``en``).

    ``answer`` is what the entitlement route returns (dates as ``date`` or ISO text).
    ``advice`` is None when the person is covered.
    """
    say = _Say(lang)
    year = answer["year"]
    on = _day(answer.get("on"))
    ry = answer.get("resident_year")
    ey = answer.get("employee_year")
    summary = answer.get("summary") or {}
    yuan = labels.yuan
    lines = [_line(say, "enrollment", _enrollment(say, answer, ry))]
    if ry:
        lines.append(_line(say, "payment", _payment(say, year, ry)))
    elif not ey:
        lines.append(_line(say, "payment", say("pay_none", year=year)))
    subsidy = _subsidy(say, ry, summary)
    if subsidy:
        lines.append(_line(say, "subsidy", subsidy))
    if ry:
        periods = say("enum_sep").join(say("period", start=_day(a), end=_day(b))
                                        for a, b in ry.get("coverage_periods") or [])
        lines.append(_line(say, "periods", periods or say("periods_none", year=year)))
        waiting = _waiting(say, ry)
        if waiting:
            lines.append(_line(say, "waiting", waiting))
        continuity = say("continuity", years=ry.get("continuous_years") or 0)
        if ry.get("cap_increment_fen"):
            continuity += say("continuity_cap", amount=yuan(ry["cap_increment_fen"]))
        lines.append(_line(say, "continuity", continuity))
    if ey:
        text = say("employee", year=year, assessed=ey.get("months_assessed", 0), covered=ey.get("months_covered", 0),
                   due=yuan(ey.get("due_fen") or 0), paid=yuan(ey.get("net_paid_fen") or 0))
        if (ey.get("outstanding_fen") or 0) > 0:
            text += say("pay_outstanding", amount=yuan(ey["outstanding_fen"]))
        lines.append(_line(say, "employee", text))
    if (ry and ry.get("duplicate_enrollment")) or summary.get("duplicate_enrollment"):
        lines.append(_line(say, "duplicate", say("duplicate")))
    if answer.get("transfers"):  # each open transfer's state on the day, computed when read
        lines.append(_line(say, "transfer", say("list_sep").join(
            say("transfer", transfer_id=t["transfer_id"], state=labels.transfer_state(t, lang))
            + (say("transfer_due", due=_day(t.get("due_on"))) if t.get("due_on") and not t.get("overdue") else "")
            for t in answer["transfers"])))
    elif summary.get("open_transfers"):
        lines.append(_line(say, "transfer", say("transfers_open", n=len(summary["open_transfers"]))))
    if answer.get("policy_version"):
        lines.append(_line(say, "policy", say("policy", version=answer["policy_version"])))
    subsidised = bool(ry and ry.get("subsidy_category")) or any(
        _day(s.get("valid_from")) <= on and (s.get("valid_until") is None or on <= _day(s["valid_until"]))
        for s in summary.get("subsidy_statuses") or [])
    return {"headline": _headline(say, answer, ry, on), "lines": lines, "advice": _advice(say, answer, ry, on, subsidised)}


__all__ = ["explain_entitlement"]
