"""Why a person is (not) covered on a day, in the reader's language.

The domain (:class:`ledger.domain.coverage.Decision`) gives the reason as a stable code and its figures
(``reason_code``, ``reason_values``: ISO days, integer fen, codes) beside its English ``reason`` sentence;
this module says it from the message catalogue (section ``coverage_reasons``), money in yuan with two
decimals. Used by ``ledger entitlement --on``, the audit history (text, HTML, PDF) and the entitlement API
(``reason_text``, in the ``Accept-Language`` language).
"""
from __future__ import annotations

from typing import Any, Mapping

from entrypoints import catalogue
from entrypoints.http.web import labels
from ledger.domain.coverage import region_label

SECTION = "coverage_reasons"


def _t(key: str, lang: str, **values: Any) -> str:
    return catalogue.text(SECTION, key, lang, **values)


def _yuan(fen: Any) -> str:
    return labels.yuan(fen) if isinstance(fen, int) else ""


def reason_text(decision: Mapping[str, Any], lang: str = catalogue.DEFAULT_LANG) -> str:
    """The sentence for a decision (a :class:`Decision` as a dict, or any mapping with ``reason_code``,
    ``reason_values`` and ``reason``); a decision without a code known to the catalogue keeps its ``reason``."""
    code = decision.get("reason_code") or ""
    if not code or not catalogue.has(SECTION, code):
        return str(decision.get("reason") or "")
    v: dict[str, Any] = dict(decision.get("reason_values") or {})
    zh = lang != "en"
    if "region_code" in v:
        v["region"] = region_label(v["region_code"])
    if "waiting_months" in v:
        waiting = _t("_waiting", lang, months=v["waiting_months"]) if v["waiting_months"] else _t("_no_waiting", lang)
        if v.get("exemption"):
            waiting += _t("_exemption", lang, exemption=labels.waiting_exemption(v["exemption"]) if zh else v["exemption"])
        v["waiting"] = waiting
    if "end_reason" in v:
        v["end_reason"] = labels.end_reason(v["end_reason"]) if zh else (v["end_reason"] or "")
    if code == "NOT_COVERED_PAID_LATE":
        v["prefix"] = (_t("_not_covered_since_refund", lang, refunded_on=v["refunded_on"]) if v.get("refunded_on")
                       else _t("_not_covered", lang))
        v["next"] = _t("_covered_from", lang, covered_from=v["covered_from"]) if v.get("covered_from") else ""
    if code in ("NOT_COVERED_REFUNDED", "NOT_COVERED_UNPAID"):
        v["money"] = _t("_money", lang, due=_yuan(v["due_fen"]), due_date=v["due_date"], paid=_yuan(v["paid_fen"]),
                        outstanding=_yuan(v["outstanding_fen"]))
    if code == "COVERED_EMPLOYEE":
        v["paid"] = _yuan(v["paid_fen"])
        v["of_due"] = _t("_of_due", lang, due=_yuan(v["due_fen"])) if v.get("due_fen") is not None else ""
    if code == "NOT_COVERED_EMPLOYEE_UNPAID":
        v["paid"] = _yuan(v["paid_fen"])
        v["due"] = (_t("_yuan", lang, yuan=_yuan(v["due_fen"])) if v.get("due_fen") is not None
                    else _t("_not_assessed", lang))
    return _t(code, lang, **v)


__all__ = ["reason_text"]


def history_note(resident_year: Mapping[str, Any], year: int, lang: str = catalogue.DEFAULT_LANG) -> str | None:
    """The policy-horizon note (政策视界) of a resident year in ``lang`` (catalogue ``[horizon]``), said from the
    domain's code and figures (``history_horizon_basis``, ``history_unknown_before``; the gap counted is
    ``year`` - that year) rather than its Chinese ``history_note``; ``None`` when the year has no such note."""
    basis, known = resident_year.get("history_horizon_basis"), resident_year.get("history_unknown_before")
    if not resident_year.get("history_note"):
        return None
    if basis not in ("POLICY_HORIZON", "FIRST_RECORD") or known is None:
        return str(resident_year["history_note"])
    gap = int(year) - int(known)
    counted = (catalogue.text("horizon", "counted", lang, gap=gap, known_from=known) if gap
               else catalogue.text("horizon", "first_time", lang))
    return catalogue.text("horizon", basis, lang, known_from=known, counted=counted)
