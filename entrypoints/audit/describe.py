"""Each person event in one line of business words, and where it came from.

Used by the history (``ledger history``), the as-of comparison (the cause of a
change) and the printable report. Words only: no figure here is computed, every
amount is the event's own.
"""
from __future__ import annotations

import re

from typing import Any

from entrypoints.messages import AUDIT_EVENTS, AUDIT_WORDS
from ledger.policy.model import fen_text
from ledger.domain.coverage import region_label

SCHEME_WORDS = {"RESIDENT": "resident scheme (城乡居民)", "EMPLOYEE": "employee scheme (职工)"}
SUBSIDY_WORDS = {
    "EXTREME_POVERTY": "extremely poor (特困人员)",
    "ORPHAN": "orphan (孤儿)",
    "DE_FACTO_ORPHAN": "de-facto unsupported child (事实无人抚养儿童)",
    "MIN_LIVING": "minimum living allowance (低保对象)",
    "RELAPSED_POVERTY": "fell back into poverty (返贫致贫人口)",
    "MONITORED": "monitored low income (监测对象)",
    "LOW_INCOME_MARGINAL": "low-income marginal (低保边缘)",
}
END_WORDS = {
    "DIED": "died",
    "MOVED_OUT": "moved out",
    "TRANSFERRED_OUT": "transferred out",
    "SWITCHED_SCHEME": "switched scheme",
    "DUPLICATE_RESOLVED": "duplicate enrollment resolved (重复参保)",
}
CHANNEL_WORDS = {
    "COUNTER": "at the counter",
    "BATCH_IMPORT": "by batch import",
    "TAX_PAYMENT": "from a tax payment (先缴费后登记)",
    "TRANSFER_IN": "on transfer in",
    "NEWBORN": "as a newborn",
}


def _scheme(code: Any) -> str:
    return SCHEME_WORDS.get(str(code), str(code))


def _period(event: Any) -> str:
    start, end = event.period_start, event.period_end
    if str(event.levy_item) == "RESIDENT":
        return f"coverage year {start.year}"
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.year:04d}-{start.month:02d}"
    return f"{start.year:04d}-{start.month:02d} to {end.year:04d}-{end.month:02d}"


#: A Chinese gloss in parentheses inside an English line: ``Registered (参保人登记)``, ``(重复参保)``.
_GLOSS = re.compile(r"\s*[(（][^()（）A-Za-z0-9]*[\u3400-\u9fff][^()（）A-Za-z0-9]*[)）]")


def english(description: str) -> str:
    """A :func:`describe` line without its Chinese glosses, for a reader who asked for English (the API's
    ``description`` keeps them)."""
    return _GLOSS.sub("", description)


def describe(event: Any) -> str:
    """One line, in business words, for a person event (any other event: its type name)."""
    kind = type(event).__name__
    e = event
    if kind == "Registered":
        born = f", born {e.birth_date.isoformat()}" if e.birth_date else ""
        grid = f", household grid {e.household_grid}" if e.household_grid else ""
        return f"Registered (参保人登记) as {e.id_type}{born}{grid}"
    if kind == "Enrolled":
        where = region_label(e.region_code)
        who = "flexible worker, " if e.flexible else (f"employer {e.employer_id}, " if e.employer_id else "")
        dup = f"; duplicate of enrollment {e.duplicate_of} (重复参保)" if e.duplicate_of else ""
        return (f"Enrolled in the {_scheme(e.scheme)} in {where} ({who}{CHANNEL_WORDS.get(str(e.channel), e.channel)}) "
                f"from {e.effective_date.isoformat()}, enrollment {e.enrollment_id}{dup}")
    if kind == "EnrollmentEnded":
        return (f"Enrollment {e.enrollment_id} ended on {e.effective_date.isoformat()}: "
                f"{END_WORDS.get(str(e.reason), e.reason)}")
    if kind == "ContributionAssessed":
        sub = ""
        if e.subsidy_fen:
            sub = f", subsidy {fen_text(e.subsidy_fen)} ({SUBSIDY_WORDS.get(e.subsidy_category or '', e.subsidy_category)})"
        if str(e.scheme) == "EMPLOYEE":
            return (f"Assessed (缴费核定) {e.period}, employee scheme: base {fen_text(e.base_fen)}, employer "
                    f"{fen_text(e.employer_fen)} + employee {fen_text(e.employee_fen)}, due {fen_text(e.due_fen)} "
                    f"by {e.due_date.isoformat()} (policy {e.policy_version})")
        return (f"Assessed (缴费核定) coverage year {e.period} in {region_label(e.region_code)}: standard "
                f"{fen_text(e.standard_fen)}{sub}, due {fen_text(e.due_fen)} by {e.due_date.isoformat()} "
                f"(policy {e.policy_version})")
    if kind == "SubsidyGranted":
        until = f" to {e.valid_to.isoformat()}" if e.valid_to else ", open-ended"
        return (f"Subsidised status granted (资助参保身份): {SUBSIDY_WORDS.get(e.category, e.category)} from "
                f"{e.valid_from.isoformat()}{until}, by {e.department}, document {e.document_no}")
    if kind == "SubsidyRevoked":
        return (f"Subsidised status {e.grant_id} revoked (身份取消) from {e.revoked_from.isoformat()}, by "
                f"{e.department}, document {e.document_no}")
    if kind == "ContributionPaid":
        credited = f", credited to the treasury {e.credited_on.isoformat()}" if e.credited_on else ""
        channel = f" via {e.channel}" if e.channel else ""
        return (f"Paid (缴费) {fen_text(e.amount_fen)} for the {_scheme(e.levy_item)}, {_period(e)}, in "
                f"{region_label(e.region_code)}; tax voucher {e.voucher_no} of office {e.tax_office}{channel}{credited}")
    if kind == "ContributionRefunded":
        reason = f": {e.reason}" if e.reason else ""
        return (f"Refunded (退费) {fen_text(e.amount_fen)} of voucher {e.original_voucher_no}; refund voucher "
                f"{e.refund_voucher_no}{reason}")
    if kind == "ContributionReversed":
        reason = f": {e.reason}" if e.reason else ""
        return (f"Reversed (冲正) voucher {e.original_voucher_no} ({fen_text(e.amount_fen)}); reversal voucher "
                f"{e.reversal_voucher_no}{reason}")
    if kind == "TransferredOut":
        return (f"Transferred out (转出) to {region_label(e.counterpart_region)}, transfer {e.transfer_id}: "
                f"account balance {fen_text(e.account_balance_fen)} and {e.contribution_months} contribution months carried")
    if kind == "TransferredIn":
        return (f"Transferred in (转入) from {region_label(e.counterpart_region)}, transfer {e.transfer_id}: "
                f"{fen_text(e.account_balance_fen)} credited, {e.contribution_months} contribution months counted")
    if kind == "TransferRequested":
        return (f"Transfer requested (转移接续申请), transfer {e.transfer_id}, from {region_label(e.region_code)} to "
                f"{region_label(e.counterpart_region)}: the sending region's time limit starts")
    if kind == "TransferOutCompleted":
        return (f"Transfer-out completed (转出完成), transfer {e.transfer_id}, {region_label(e.region_code)} to "
                f"{region_label(e.counterpart_region)}: enrollment {e.enrollment_id} suspended (中止); "
                f"{fen_text(e.account_balance_fen)} and {e.contribution_months} contribution months sent")
    if kind == "TransferInCompleted":
        where = (f"external (省外), source document {e.source_document_no}" if e.external
                 else "matched to its transfer-out")
        return (f"Transfer-in completed (转入完成), transfer {e.transfer_id}, from {region_label(e.counterpart_region)} "
                f"to {region_label(e.region_code)}, {where}: {fen_text(e.account_balance_fen)} credited, "
                f"{e.contribution_months} contribution months counted")
    if kind == "TransferCancelled":
        what = "rejected by the receiving region (拒绝接收)" if e.rejected else "cancelled (转移撤销)"
        return (f"Transfer {e.transfer_id} {what}: {e.reason}; the suspended enrollment resumes, balance and months "
                f"returned")
    if kind == "AccountCredited":
        ref = f", reference {e.reference}" if e.reference else ""
        return f"Personal account credited (个人账户划入) {fen_text(e.amount_fen)}: {e.reason}{ref}"
    if kind == "AccountDebited":
        ref = f", reference {e.reference}" if e.reference else ""
        rel = (f", for relative {e.relative_relationship} (家庭共济)" if e.relative_person_id else "")
        return f"Personal account debited (个人账户支出) {fen_text(e.amount_fen)}: {e.reason}{ref}{rel}"
    if kind == "LateFeePaid":
        channel = f" via {e.channel}" if e.channel else ""
        return (f"Late fee paid (滞纳金缴纳) {fen_text(e.amount_fen)} for employee month {e.period} in "
                f"{region_label(e.region_code)}; voucher {e.voucher_no} of office {e.tax_office}{channel}")
    if kind == "LateFeeWaived":
        return (f"Late fee waived (滞纳金减免) for employee month {e.period} in {region_label(e.region_code)}: "
                f"{e.reason}; approved by {e.approver}")
    if kind == "PersonMerged":
        return (f"Person record {e.merged_person_id} merged into this person (参保人合并, {e.merge_kind}): {e.reason}; "
                f"proposed by {e.proposed_by}, approved by {e.approved_by}, change {e.change_id}")
    if kind == "PersonMergedInto":
        return (f"This record merged into person {e.survivor_person_id} (参保人合并, {e.merge_kind}): {e.reason}; "
                f"proposed by {e.proposed_by}, approved by {e.approved_by}, change {e.change_id}; it takes no new facts")
    if kind == "ResidenceRecorded":
        grid = f" in grid {e.grid_code}" if e.grid_code else ""
        return f"Household registry (户籍): {str(e.status).lower().replace('_', ' ')}{grid}, record {e.record_id}"
    return kind


def document(event: Any) -> str | None:
    """The source document behind an event: the tax voucher, registry document or record id."""
    kind = type(event).__name__
    if kind == "ContributionPaid":
        return f"tax voucher {event.voucher_no} (office {event.tax_office})"
    if kind == "ContributionRefunded":
        return f"tax voucher {event.refund_voucher_no} (office {event.tax_office}), refunds {event.original_voucher_no}"
    if kind == "ContributionReversed":
        return f"tax voucher {event.reversal_voucher_no} (office {event.tax_office}), reverses {event.original_voucher_no}"
    if kind == "LateFeePaid":
        return f"tax voucher {event.voucher_no} (office {event.tax_office}), late fee of {event.period}"
    if kind == "LateFeeWaived":
        return f"waiver {event.waiver_id}, approved by {event.approver}"
    if kind in ("SubsidyGranted", "SubsidyRevoked"):
        return f"{event.department} document {event.document_no}"
    if kind in ("PersonMerged", "PersonMergedInto"):
        return f"change {event.change_id}, proposed by {event.proposed_by}, approved by {event.approved_by}"
    if kind == "ResidenceRecorded":
        return f"registry record {event.record_id}"
    if kind in ("TransferredOut", "TransferredIn", "TransferRequested", "TransferOutCompleted", "TransferCancelled"):
        return f"transfer {event.transfer_id}"
    if kind == "TransferInCompleted":
        extra = f", source document {event.source_document_no}" if event.external else ""
        return f"transfer {event.transfer_id}{extra}"
    return None


def provenance_line(provenance: dict[str, Any] | None) -> str:
    """Where the command came from, in one line: the feed position, or the API user and request."""
    p = dict(provenance or {})
    source = p.get("source", "?")
    parts = []
    if p.get("topic"):
        position = p["topic"]
        if p.get("partition") is not None:
            position += f" partition {p['partition']}"
        if p.get("offset") is not None:
            position += f" offset {p['offset']}"
        parts.append(position)
    if p.get("record_key"):
        parts.append(f"record {p['record_key']}")
    if p.get("user"):
        parts.append(f"user {p['user']}")
    if p.get("request_id"):
        parts.append(f"request {p['request_id']}")
    if p.get("approved_by"):  # carried out by an approval (maker-checker, 双人复核)
        parts.append(f"change {p.get('change_id')} proposed by {p.get('proposed_by')}, approved by {p['approved_by']}")
    return f"{source}: {', '.join(parts)}" if parts else str(source)


#: What kind of source record an event came from (keys of the audit report's catalogue, ``record_<kind>``).
_RECORD_FIELDS: dict[str, tuple[str, str]] = {
    "ContributionPaid": ("tax_voucher", "voucher_no"),
    "LateFeePaid": ("tax_voucher", "voucher_no"),
    "ContributionRefunded": ("tax_refund", "refund_voucher_no"),
    "ContributionReversed": ("tax_reversal", "reversal_voucher_no"),
    "SubsidyGranted": ("status_document", "document_no"),
    "SubsidyRevoked": ("status_document", "document_no"),
    "ResidenceRecorded": ("registry_record", "record_id"),
    "LateFeeWaived": ("waiver", "waiver_id"),
    "PersonMerged": ("change", "change_id"),
    "PersonMergedInto": ("change", "change_id"),
    "TransferredOut": ("transfer", "transfer_id"),
    "TransferredIn": ("transfer", "transfer_id"),
    "TransferRequested": ("transfer", "transfer_id"),
    "TransferOutCompleted": ("transfer", "transfer_id"),
    "TransferInCompleted": ("transfer", "transfer_id"),
    "TransferCancelled": ("transfer", "transfer_id"),
}


def source_record(event: Any) -> dict[str, Any]:
    """The source record behind an event, language-neutral, for the printable report.

    ``kind`` (tax_voucher, tax_refund, tax_reversal, status_document, registry_record,
    waiver, transfer, or None when the event carries no record of its own), ``id`` (the
    record's own number: voucher, document, registry record id), ``issuer`` (tax office or
    department, when known), and from the provenance ``user`` / ``request_id`` (a clerk's
    command) or ``feed`` (topic and offset). Never the Kafka message key: it names the
    message, and several feeds use the same key for one person.
    """
    kind_id = _RECORD_FIELDS.get(type(event).__name__)
    p = dict(getattr(event, "provenance", None) or {})
    out: dict[str, Any] = {"kind": None, "id": None, "issuer": None, "source": p.get("source"),
                           "user": p.get("user"), "request_id": p.get("request_id"), "feed": None}
    if kind_id is not None:
        out["kind"], out["id"] = kind_id[0], getattr(event, kind_id[1], None)
        out["issuer"] = getattr(event, "tax_office", None) or getattr(event, "department", None)
    if p.get("topic"):
        out["feed"] = p["topic"] + (f"#{p['offset']}" if p.get("offset") is not None else "")
    return out


def _zh_word(code: Any) -> str:
    return AUDIT_WORDS.get(str(code), {}).get("zh", str(code)) if code is not None else "—"


def _zh_region(code: Any) -> str:
    return region_label(code) if code else "未知地区"


def _zh_yuan(fen: Any) -> str:
    return fen_text(int(fen or 0)).removesuffix(" yuan")


def describe_zh(event: Any) -> str | None:
    """The event in one line of Chinese (templates in :data:`entrypoints.messages.AUDIT_EVENTS`); None: no template."""
    kind, e = type(event).__name__, event
    v: dict[str, Any]
    if kind == "Registered":
        v = {"id_type": _zh_word(e.id_type), "born": f"，出生 {e.birth_date.isoformat()}" if e.birth_date else "",
             "grid": f"，户籍网格 {e.household_grid}" if e.household_grid else ""}
    elif kind == "Enrolled":
        who = "灵活就业，" if e.flexible else (f"单位 {e.employer_id}，" if e.employer_id else "")
        v = {"region": _zh_region(e.region_code), "scheme": _zh_word(e.scheme), "channel": who + _zh_word(e.channel),
             "effective": e.effective_date.isoformat(), "enrollment_id": e.enrollment_id,
             "dup": f"；与参保 {e.duplicate_of} 重复" if e.duplicate_of else ""}
    elif kind == "EnrollmentEnded":
        v = {"enrollment_id": e.enrollment_id, "effective": e.effective_date.isoformat(), "reason": _zh_word(e.reason)}
    elif kind == "ContributionAssessed" and str(e.scheme) == "EMPLOYEE":
        kind = "ContributionAssessedEmployee"
        v = {"period": e.period, "base": _zh_yuan(e.base_fen), "employer": _zh_yuan(e.employer_fen),
             "employee": _zh_yuan(e.employee_fen), "due": _zh_yuan(e.due_fen), "due_date": e.due_date.isoformat(),
             "policy": e.policy_version}
    elif kind == "ContributionAssessed":
        sub = f"，资助 {_zh_yuan(e.subsidy_fen)} 元（{_zh_word(e.subsidy_category)}）" if e.subsidy_fen else ""
        v = {"period": e.period, "region": _zh_region(e.region_code), "standard": _zh_yuan(e.standard_fen),
             "subsidy": sub, "due": _zh_yuan(e.due_fen), "due_date": e.due_date.isoformat(), "policy": e.policy_version}
    elif kind == "SubsidyGranted":
        v = {"category": _zh_word(e.category), "valid_from": e.valid_from.isoformat(),
             "until": f"至 {e.valid_to.isoformat()}" if e.valid_to else "，长期有效", "department": e.department,
             "document_no": e.document_no}
    elif kind == "SubsidyRevoked":
        v = {"revoked_from": e.revoked_from.isoformat(), "department": e.department, "document_no": e.document_no}
    elif kind == "ContributionPaid":
        start, end = e.period_start, e.period_end
        period = (f"{start.year} 年度" if str(e.levy_item) == "RESIDENT"
                  else f"{start.year:04d}-{start.month:02d} 至 {end.year:04d}-{end.month:02d}")
        v = {"amount": _zh_yuan(e.amount_fen), "scheme": _zh_word(e.levy_item), "period": period,
             "region": _zh_region(e.region_code), "voucher_no": e.voucher_no, "tax_office": e.tax_office,
             "channel": f"，渠道 {e.channel}" if e.channel else ""}
    elif kind in ("ContributionRefunded", "ContributionReversed"):
        voucher = e.refund_voucher_no if kind == "ContributionRefunded" else e.reversal_voucher_no
        v = {"amount": _zh_yuan(e.amount_fen), "original": e.original_voucher_no, "voucher": voucher,
             "reason": f"；{e.reason}" if e.reason else ""}
    elif kind == "ResidenceRecorded":
        v = {"record_id": e.record_id, "status": {"RESIDENT": "常住"}.get(str(e.status), _zh_word(e.status)),
             "grid": f"，网格 {e.grid_code}" if e.grid_code else ""}
    elif kind == "TransferRequested":
        v = {"transfer_id": e.transfer_id, "region": _zh_region(e.region_code),
             "counterpart": _zh_region(e.counterpart_region)}
    elif kind in ("TransferOutCompleted", "TransferInCompleted", "TransferredOut", "TransferredIn"):
        v = {"transfer_id": e.transfer_id, "region": _zh_region(getattr(e, "region_code", None)),
             "counterpart": _zh_region(e.counterpart_region), "enrollment_id": getattr(e, "enrollment_id", ""),
             "balance": _zh_yuan(e.account_balance_fen), "months": e.contribution_months}
    elif kind == "TransferCancelled":
        v = {"transfer_id": e.transfer_id, "what": "被转入地拒绝接收" if e.rejected else "撤销", "reason": e.reason}
    elif kind in ("AccountCredited", "AccountDebited"):
        v = {"amount": _zh_yuan(e.amount_fen), "reason": e.reason, "ref": f"，参考号 {e.reference}" if e.reference else ""}
    elif kind == "LateFeePaid":
        v = {"amount": _zh_yuan(e.amount_fen), "period": e.period, "voucher_no": e.voucher_no, "tax_office": e.tax_office}
    elif kind == "LateFeeWaived":
        v = {"period": e.period, "reason": e.reason, "approver": e.approver}
    elif kind in ("PersonMerged", "PersonMergedInto"):
        v = {"other": e.merged_person_id if kind == "PersonMerged" else e.survivor_person_id,
             "kind": _zh_word(e.merge_kind), "reason": e.reason, "maker": e.proposed_by, "checker": e.approved_by,
             "change_id": e.change_id}
    else:
        return None
    return AUDIT_EVENTS[kind]["zh"].format(**v)
