"""Business cases the county's random timeline does not script, with their expected figures (the oracle).

The county (:mod:`entrypoints.simulation.county`) is a season of feeds; the cases here are
what a clerk does with their results in the following year (coverage year ``county.coverage_year
+ 1``), on a few people of their own:

* **late fees (滞纳金)** -- an employer pays two months late; the fee stays owed after the
  contributions are paid; the first month's fee is paid through the tax feed's LATE_FEE levy
  item, the second month's is waived (reason, approver other than the clerk);
* **clerk-entered statuses (资助参保身份认定录入)** -- EXTREME_POVERTY makes the year's due 0;
  MIN_LIVING plus EXTREME_POVERTY gives the more generous subsidy, not the sum; 40,000 fen paid
  on 1 Oct followed by EXTREME_POVERTY from 1 Dec is owed back; a grant revoked before the year
  leaves the full share due;
* **employer arrears (单位欠费)** -- a second employer stops paying after its first month: one
  employer row with its total (outstanding + late fee), exported to XLSX;
* **a person registered twice, merged (参保人合并)** -- the right ID number and a mistyped one, each
  enrolled and assessed in the same grid: a clerk proposes the merge, an approver approves it; the
  gap list, coverage and arrears then count one person, and a payment the tax bureau later reports
  under the mistyped number lands on the person kept;
* **a duplicate enrollment resolved (重复参保清理)** -- a resident who paid the year is then hired
  (an employee enrollment from 1 March): ending the resident enrollment as DUPLICATE_RESOLVED owes
  back what was paid under it for the periods the employee enrollment covered too;
* **a payment correction above the threshold (大额退费)** -- a bank debited one month twice; refunding
  the second voucher exceeds ``[approval] correction_threshold_fen`` of the region's table, so it
  waits for an approver and moves no figure until approved;
* **statements from a file (对账单文件)** -- the tax bureau's statements of these payments as
  ``ledger feed statements`` reads them, one day's statement left out on purpose: that day is
  ``STATEMENT_MISSING``;
* **history from the old system (历史数据迁移)** -- an old-system sheet (the columns ``ledger migrate``
  reads) for two people: one last covered six years before the case year (enrollment and three paid
  years), who then pays the year on 1 April and back-pays four of the five missing years through the tax
  feed: gap 5, waiting 3 + 4 - 4 = 3 months, raised to the repaired floor of 6; one covered every year
  up to the last, who pays on time and is covered from 1 January. A twin of the first, without the
  migrated history, is enrolled at the counter and pays the same: her entitlement says the years before
  the ledger's first record of her are unknown (the policy horizon);
* **next year (下一年度核定)** -- one resident in every region that has policy tables is assessed for
  the year after the case year; the due is that region's individual share in its table for that year
  (provisional when the table says so).

The expected figures are written out here from the cases' own facts and the policy tables'
*numbers* (rates, due day, subsidy rules), never by calling ``ledger.domain``: like the county's
oracle, a second implementation the demo compares the ledger with.
"""
from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from entrypoints.simulation.county import _best_subsidy, _employee_monthly_fen
from ledger.domain.identity import make_resident_id
from ledger.inbound_records import TaxPaymentRecord

BEIJING = timezone(timedelta(hours=8))
TAX_OFFICE_DIGIT = "1"  # the county's tax office code is "1" + region + "0000", as the county's payments


@dataclass(frozen=True)
class CasePerson:
    id_number: str
    name: str


@dataclass
class Cases:
    """The cases' facts (what the driver puts through the public interfaces) and their expected figures."""

    region: str
    year: int
    as_of: date
    tax_office: str
    clerk: str
    approver: str
    fee_employer: str
    fee_staff: list[CasePerson]
    fee_months: list[str]
    fee_base_fen: int
    fee_paid_on: dict[str, date]
    fee_collected_month: str
    fee_collected_on: date
    fee_waived_month: str
    waiver_reason: str
    waiver_effective: date
    arrears_employer: str
    arrears_staff: list[CasePerson]
    arrears_months: list[str]
    arrears_paid_months: list[str]
    statuses: dict[str, dict[str, Any]]
    merge: dict[str, Any] = field(default_factory=dict)
    duplicate: dict[str, Any] = field(default_factory=dict)
    correction: dict[str, Any] = field(default_factory=dict)
    tax_records: list[TaxPaymentRecord] = field(default_factory=list)
    #: Collection records the tax bureau sends after the clerk's work (the payment naming the merged record).
    later_tax_records: list[TaxPaymentRecord] = field(default_factory=list)
    #: Counter corrections the clerk enters (through maker-checker), on the bureau's statements too.
    counter_records: list[TaxPaymentRecord] = field(default_factory=list)
    statements: list[dict[str, Any]] = field(default_factory=list)  # file rows, the withheld day left out
    migration: dict[str, Any] = field(default_factory=dict)
    #: The old system's sheet: one dict per row, keyed by the migration sheet's Chinese headers.
    migration_rows: list[dict[str, str]] = field(default_factory=list)
    next_year: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, Any] = field(default_factory=dict)


def _month_days(month: str) -> tuple[date, date]:
    y, m = map(int, month.split("-"))
    return date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1])


def _due_date(table: Any, month: str) -> date:
    """The day a month's employee contributions are due: ``due_month_offset`` months later, on ``due_day``."""
    y, m = map(int, month.split("-"))
    m += table.employee.due_month_offset
    y, m = y + (m - 1) // 12, (m - 1) % 12 + 1
    return date(y, m, min(table.employee.due_day, calendar.monthrange(y, m)[1]))


def _fee(table: Any, principal_fen: int, days: int) -> int:
    """0.05 %/day (the table's ppm) on the principal for ``days``, simple, rounded once half up."""
    if days <= 0:
        return 0
    ppm = table.employee.late_fee_ppm_per_day
    return (2 * principal_fen * days * ppm + 1_000_000) // 2_000_000


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(10), tzinfo=BEIJING)


def build_cases(county: Any, policies: Any) -> Cases:
    """The cases for ``county`` (its region, the year after its coverage year), with the expected figures."""
    region, year = county.region_code, county.coverage_year + 1
    table = policies.get(region, year)
    taken = {p.id_number for p in county.persons}
    seq = iter(range(900, 1000))

    def person(name: str) -> CasePerson:
        for s in seq:
            n = make_resident_id(region, date(1979, 9, 9), s)
            if n not in taken:
                taken.add(n)
                return CasePerson(n, name)
        raise RuntimeError("no free ID number for the demo's cases")

    office = f"{TAX_OFFICE_DIGIT}{region}0000"
    cases = Cases(
        region=region, year=year, as_of=date(year, 5, 6), tax_office=office, clerk=f"clerk-{region}-demo",
        approver=f"approver-{region}-demo",
        fee_employer=f"91{region}MA0DEMO01X", fee_staff=[person(n) for n in ("赵立新", "钱晓燕", "孙建国")],
        fee_months=[f"{year}-01", f"{year}-02"], fee_base_fen=table.employee.base_floor_fen,
        fee_paid_on={f"{year}-01": date(year, 3, 16), f"{year}-02": date(year, 4, 20)},
        fee_collected_month=f"{year}-01", fee_collected_on=date(year, 4, 10),
        fee_waived_month=f"{year}-02", waiver_reason="系统升级致扣款失败，经局务会议批准减免",
        waiver_effective=date(year, 5, 5),
        arrears_employer=f"91{region}MA0DEMO02X", arrears_staff=[person(n) for n in ("李秀梅", "周志强")],
        arrears_months=[f"{year}-01", f"{year}-02", f"{year}-03"], arrears_paid_months=[f"{year}-01"],
        statuses={
            "extreme_poverty": {"person": person("吴桂兰"), "grants": [("EXTREME_POVERTY", date(year, 1, 1),
                                                                       date(year, 12, 31))], "paid_fen": 0},
            "two_statuses": {"person": person("郑玉珍"), "grants": [("MIN_LIVING", date(year, 1, 1), None),
                                                                   ("EXTREME_POVERTY", date(year, 1, 1), None)],
                             "paid_fen": 0},
            "owed_back": {"person": person("王德福"), "grants": [("EXTREME_POVERTY", date(year - 1, 12, 1), None)],
                          "paid_fen": 40_000, "paid_on": date(year - 1, 10, 1)},
            "revoked": {"person": person("冯春花"), "grants": [("MIN_LIVING", date(year - 1, 11, 1), None)],
                        "revoked_from": date(year - 1, 12, 15), "paid_fen": 0},
        },
    )
    grid = county.grids[0].code
    right = person("陈淑英")
    # The same woman registered a second time with her birth day mistyped (09 -> 19); a valid number all the same.
    typo = CasePerson(make_resident_id(region, date(1979, 9, 19), int(right.id_number[14:17])), right.name)
    if typo.id_number in taken:
        raise RuntimeError("no free ID number for the demo's merge case")
    taken.add(typo.id_number)
    cases.merge = {"kept": right, "merged": typo, "grid": grid, "merge_kind": "ID_CORRECTION",
                   "reason": "同一人两次登记，第二次出生日期录错一位（09 录成 19）", "later_paid_on": date(year - 1, 12, 20)}
    cases.duplicate = {"person": person("黄建华"), "employer": f"91{region}MA0DEMO04X", "hired_on": date(year, 3, 1),
                       "enrolled_on": date(year - 2, 9, 15),
                       "paid": {year - 1: date(year - 1, 10, 20), year: date(year - 1, 10, 8)}}
    cases.correction = {"person": person("高志远"), "employer": f"91{region}MA0DEMO03X", "month": f"{year}-03",
                        "reason": "银行重复扣款，退还第二笔"}
    _late_fee_facts(cases, table)
    _arrears_facts(cases, table)
    _status_facts(cases, table)
    _merge_facts(cases, table)
    _duplicate_facts(cases, policies)
    _correction_facts(cases, table, policies)
    cases.migration = {"migrated": person("刘翠英"), "continuous": person("马永福"), "twin": person("刘翠兰"),
                       "grid": grid}
    _migration_facts(cases, policies)
    _next_year_facts(cases, policies, taken)
    _statement_facts(cases)
    return cases


def _pay(cases: Cases, who: CasePerson, voucher: str, levy: str, start: date, end: date, amount: int,
         day: date, channel: str = "EMPLOYER", *, into: list[TaxPaymentRecord] | None = None) -> TaxPaymentRecord:
    record = TaxPaymentRecord(
        voucher_no=voucher, tax_office=cases.tax_office, id_type="RESIDENT_ID", id_number=who.id_number,
        name=who.name, region_code=cases.region, levy_item=levy, period_start=start, period_end=end,
        amount_fen=amount, paid_at=_noon(day), credited_on=day + timedelta(days=1), channel=channel)
    (cases.tax_records if into is None else into).append(record)
    return record


def _late_fee_facts(cases: Cases, table: Any) -> None:
    _, monthly = _employee_monthly_fen(table, cases.fee_base_fen)
    rows = {}
    for month in cases.fee_months:
        due, paid_on = _due_date(table, month), cases.fee_paid_on[month]
        start, end = _month_days(month)
        for i, who in enumerate(cases.fee_staff):
            _pay(cases, who, f"DEMO{month.replace('-', '')}F{i}", "EMPLOYEE", start, end, monthly, paid_on)
            rows[(who.id_number, month)] = {"principal_fen": monthly, "due_date": due, "until": paid_on,
                                            "days": (paid_on - due).days,
                                            "fee_fen": _fee(table, monthly, (paid_on - due).days)}
    start, end = _month_days(cases.fee_collected_month)
    for i, who in enumerate(cases.fee_staff):
        fee = rows[(who.id_number, cases.fee_collected_month)]["fee_fen"]
        _pay(cases, who, f"DEMOZN{i}", "LATE_FEE", start, end, fee, cases.fee_collected_on, channel="BANK")
    by_month = defaultdict(int)
    for (_, month), r in rows.items():
        by_month[month] += r["fee_fen"]
    cases.expected["late_fees"] = {
        "rows": rows, "owed_after_contributions_fen": sum(by_month.values()),
        "collected_fen": by_month[cases.fee_collected_month], "waived_fen": by_month[cases.fee_waived_month],
        "owed_at_end_fen": 0,
    }


def _arrears_facts(cases: Cases, table: Any) -> None:
    _, monthly = _employee_monthly_fen(table, cases.fee_base_fen)
    outstanding = fee = 0
    for month in cases.arrears_months:
        due = _due_date(table, month)
        start, end = _month_days(month)
        for i, who in enumerate(cases.arrears_staff):
            if month in cases.arrears_paid_months:  # paid on its due date: on time, no fee
                _pay(cases, who, f"DEMO{month.replace('-', '')}A{i}", "EMPLOYEE", start, end, monthly, due)
            elif due < cases.as_of:
                outstanding += monthly
                fee += _fee(table, monthly, (cases.as_of - due).days)
    cases.expected["arrears"] = {"employer_id": cases.arrears_employer, "outstanding_fen": outstanding,
                                 "late_fee_fen": fee, "total_fen": outstanding + fee,
                                 "persons": len(cases.arrears_staff)}


def _status_facts(cases: Cases, table: Any) -> None:
    share = table.resident.individual_share_fen
    expected = {}
    for key, case in cases.statuses.items():
        intervals = [(c, f, t) for c, f, t in case["grants"]]
        if case.get("revoked_from"):
            intervals = [(c, f, case["revoked_from"] - timedelta(days=1)) for c, f, _ in intervals]
        category, subsidy = _best_subsidy(table, intervals)
        due = max(0, share - subsidy)
        if case["paid_fen"]:
            _pay(cases, case["person"], f"DEMOR{key[:6].upper()}", "RESIDENT", date(cases.year, 1, 1),
                 date(cases.year, 12, 31), case["paid_fen"], case["paid_on"], channel="APP")
        expected[key] = {"category": category, "subsidy_fen": subsidy, "due_fen": due,
                         "overpayment_fen": max(0, case["paid_fen"] - due),
                         "sum_of_subsidies_fen": sum(_best_subsidy(table, [g])[1] for g in intervals)}
    cases.expected["statuses"] = expected


def _counts(records: list[dict[str, Any]], due_fen: int) -> dict[str, int]:
    """A grid's residents as the views should count them: one per person (not per record), covered when what
    the person paid for the year reaches the due, else a gap and in arrears."""
    covered = sum(1 for r in records if r["paid_fen"] >= due_fen)
    return {"residents": len(records), "covered": covered, "gaps": len(records) - covered,
            "in_arrears": len(records) - covered}


def _merge_facts(cases: Cases, table: Any) -> None:
    """Two records of one person, each enrolled and assessed, nothing paid; once merged one person; then the
    payment reported under the mistyped number makes that one person covered."""
    m, share = cases.merge, table.resident.individual_share_fen
    start, end = date(cases.year, 1, 1), date(cases.year, 12, 31)
    m["later_payment"] = _pay(cases, m["merged"], "DEMOHB1", "RESIDENT", start, end, share, m["later_paid_on"],
                              channel="BANK", into=cases.later_tax_records)
    before = _counts([{"paid_fen": 0}, {"paid_fen": 0}], share)
    merged = _counts([{"paid_fen": 0}], share)  # the two records' facts are one person's: still nothing paid
    paid = _counts([{"paid_fen": share}], share)
    cases.expected["merge"] = {
        "change_by_merge": {k: merged[k] - before[k] for k in before},
        "change_by_later_payment": {k: paid[k] - merged[k] for k in before},
        "paid_fen_kept": share, "refused_self_approval": "APPROVAL_BY_MAKER",
        "history_names": [cases.clerk, cases.approver],
    }


def _overlaps(first: date, last: date, start: date, end: date | None) -> bool:
    return start <= last and (end is None or end >= first)


def _duplicate_facts(cases: Cases, policies: Any) -> None:
    """A resident who paid two years, hired on 1 March of the second: what was paid under the resident
    enrollment for a year the employee enrollment also covers is owed back once that enrollment is ended
    as the duplicate; a year only the resident enrollment covered was real coverage and stays paid."""
    d = cases.duplicate
    owed = 0
    for y, day in sorted(d["paid"].items()):
        share = policies.get(cases.region, y).resident.individual_share_fen
        first, last = date(y, 1, 1), date(y, 12, 31)
        _pay(cases, d["person"], f"DEMOCF{y}", "RESIDENT", first, last, share, day, channel="APP")
        resident_in_force = _overlaps(first, last, d["enrolled_on"], None)
        employee_in_force = _overlaps(first, last, d["hired_on"], None)
        if resident_in_force and employee_in_force:
            owed += share
    cases.expected["duplicate"] = {"refund_owed_fen": owed}


def _correction_facts(cases: Cases, table: Any, policies: Any) -> None:
    """A high earner's month debited twice by the bank; refunding the second voucher is above the region's
    threshold (read from its ``[approval]`` table): pending until approved, the month shows both payments."""
    c = cases.correction
    threshold = policies.approval(cases.region, cases.as_of).correction_threshold_fen
    base, monthly = _employee_monthly_fen(table, 10 ** 9)  # declared above the ceiling: the ceiling's base
    if monthly <= threshold:
        raise RuntimeError("the region's highest monthly contribution is not above the correction threshold: "
                           "the demo's correction case cannot be built")
    start, end = _month_days(c["month"])
    due = _due_date(table, c["month"])
    first = _pay(cases, c["person"], f"DEMOGZ{c['month'].replace('-', '')}A", "EMPLOYEE", start, end, monthly, due)
    second = _pay(cases, c["person"], f"DEMOGZ{c['month'].replace('-', '')}B", "EMPLOYEE", start, end, monthly, due)
    c.update(declared_base_fen=base, threshold_fen=threshold, original=second,
             corrected_on=due + timedelta(days=3), voucher_no=f"DEMOTF{c['month'].replace('-', '')}")
    cases.counter_records.append(TaxPaymentRecord(
        voucher_no=c["voucher_no"], tax_office=cases.tax_office, id_type="RESIDENT_ID",
        id_number=c["person"].id_number, name=c["person"].name, region_code=cases.region, levy_item="EMPLOYEE",
        period_start=start, period_end=end, amount_fen=monthly, paid_at=_noon(c["corrected_on"]),
        channel="COUNTER", kind="REFUND", original_voucher_no=second.voucher_no,
        original_tax_office=cases.tax_office, reason=c["reason"]))
    cases.expected["correction"] = {"threshold_fen": threshold, "amount_fen": monthly, "pending": True,
                                    "paid_while_pending_fen": 2 * monthly, "paid_after_fen": monthly,
                                    "first_voucher": first.voucher_no}


def _add_months(day: date, months: int) -> date:
    m = day.month - 1 + months
    y, m = day.year + m // 12, m % 12 + 1
    return date(y, m, min(day.day, calendar.monthrange(y, m)[1]))


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _migration_facts(cases: Cases, policies: Any) -> None:
    """The old system's sheet and what the ledger must make of it, worked out from the waiting-period rule
    (国办发〔2024〕38号 as /work/shared/domain.md reads it) and the numbers of the case year's table.

    ``migrated``: enrolled in the old system, paid the three years ending ``year - 6`` (each in its
    concentrated period); in the case year she back-pays the four years after the last covered one
    (1 year before the case year stays unpaid) on 20 March and pays the year on 1 April, through the tax
    feed. ``continuous``: paid every year up to the one before the case year in the old system, pays the
    case year in the concentrated period: no waiting. ``twin``: the same payments as ``migrated``, but the
    ledger has none of her history; the clerk enrolls her on the day she back-pays."""
    g, year, region = cases.migration, cases.year, cases.region
    horizon = min(policies.years(region))
    share = {y: policies.get(region, y).resident.individual_share_fen for y in range(horizon, year + 1)}
    rows: list[dict[str, str]] = []

    def enrolled(key: str, who: CasePerson, on: date) -> None:
        rows.append({"原系统记录号": key, "记录类型": "参保", "证件类型": "居民身份证", "证件号码": who.id_number,
                     "姓名": who.name, "参保地": region, "网格": g["grid"], "参保日期": on.isoformat(),
                     "缴费年度": "", "缴费金额": "", "缴费日期": ""})

    def paid(key: str, who: CasePerson, y: int, on: date) -> None:
        rows.append({"原系统记录号": key, "记录类型": "缴费", "证件类型": "居民身份证", "证件号码": who.id_number,
                     "姓名": who.name, "参保地": region, "网格": "", "参保日期": "", "缴费年度": str(y),
                     "缴费金额": _yuan(share[y]), "缴费日期": on.isoformat()})

    last = year - 6
    old_years = [y for y in range(last - 2, last + 1) if y >= horizon]
    migrated, continuous, twin = g["migrated"], g["continuous"], g["twin"]
    enrolled(f"HIS-{old_years[0] - 1}-0001", migrated, date(old_years[0] - 1, 9, 20))
    for y in old_years:
        paid(f"HIS-{y}-0001", migrated, y, date(y - 1, 11, 5))
    enrolled(f"HIS-{horizon - 1}-0002", continuous, date(horizon - 1, 9, 25))
    for y in range(horizon, year):
        paid(f"HIS-{y}-0002", continuous, y, date(y - 1, 10, 12))
    cases.migration_rows = rows
    back_years = list(range(last + 1, year - 1))  # the year before the case year is left unpaid
    g.update(last_covered=last, old_years=old_years, back_years=back_years, back_paid_on=date(year, 3, 20),
             paid_on=date(year, 4, 1), continuous_paid_on=date(year - 1, 11, 10), twin_enrolled_on=date(year, 3, 20))
    for who in (migrated, twin):
        for y in back_years:
            _pay(cases, who, f"DEMOBJ{y}{who.id_number[-4:]}", "RESIDENT", date(y, 1, 1), date(y, 12, 31), share[y],
                 g["back_paid_on"], channel="APP")
        _pay(cases, who, f"DEMOJF{year}{who.id_number[-4:]}", "RESIDENT", date(year, 1, 1), date(year, 12, 31),
             share[year], g["paid_on"], channel="APP")
    _pay(cases, continuous, f"DEMOJF{year}{continuous.id_number[-4:]}", "RESIDENT", date(year, 1, 1),
         date(year, 12, 31), share[year], g["continuous_paid_on"], channel="APP")
    # The waiting period, from the rule and the table's numbers (not from ledger.domain).
    w = policies.get(region, year).resident.waiting
    gap = year - 1 - last  # the consecutive years right before the case year without coverage
    back = len(back_years)
    variable = max(0, w.per_gap_year_months * max(0, gap - 1) - w.per_gap_year_months * back)
    waiting = w.fixed_months + variable
    if back and gap >= w.repaired_min_gap_years:
        waiting = max(waiting, w.repaired_min_months)
    start = max(g["paid_on"], date(year, 1, 1))
    # The twin: the ledger's first record of her is the counter enrollment; the tables start at ``horizon``.
    known_from = max(horizon, g["twin_enrolled_on"].year)
    cases.expected["migration"] = {
        "rows": len(rows), "imported_first": len(rows), "imported_again": 0, "already_imported_again": len(rows),
        "gap_years": gap, "back_paid_years": back, "waiting_months": waiting,
        "arithmetic": f"{w.fixed_months} + {gap - 1} - {back} = {w.fixed_months + variable}",
        "covered_from": _add_months(start, waiting), "continuous_covered_from": date(year, 1, 1),
        "twin_unknown_before": known_from,
        "twin_basis": "POLICY_HORIZON" if horizon >= g["twin_enrolled_on"].year else "FIRST_RECORD",
        "policy_horizon": horizon,
    }


def _next_year_facts(cases: Cases, policies: Any, taken: set[str]) -> None:
    """One resident per region with policy tables, assessed for the year after the case year: the due is the
    individual share in that region's table for that year; provisional when its provenance says so."""
    nxt = cases.year + 1
    people, expected = {}, {}
    for region in sorted(policies.regions()):
        for s in range(950, 1000):
            n = make_resident_id(region, date(1986, 3, 3), s)
            if n not in taken:
                taken.add(n)
                break
        people[region] = CasePerson(n, "杨春梅")
        table = policies.get(region, nxt)
        expected[region] = {"due_fen": table.resident.individual_share_fen,
                            "provisional": "resident.individual_share_fen" in table.provisional_fields}
    cases.next_year = {"year": nxt, "people": people, "enrolled_on": date(cases.year, 9, 15)}
    cases.expected["next_year"] = {"year": nxt, "regions": expected}


def _signed(record: TaxPaymentRecord) -> int:
    """A collection record's amount as a statement totals it: a refund or reversal takes money back."""
    return -record.amount_fen if str(record.kind) in ("REFUND", "REVERSAL") else record.amount_fen


def _statement_facts(cases: Cases) -> None:
    """One statement per (Beijing payment day, office, region) of the cases' collections (late fees included:
    the bureau's statement lists what it collected); the earliest day left out on purpose (never sent)."""
    days: dict[tuple[date, str, str], list[TaxPaymentRecord]] = defaultdict(list)
    for r in cases.tax_records + cases.later_tax_records + cases.counter_records:
        days[(r.paid_at.astimezone(BEIJING).date(), r.tax_office, r.region_code)].append(r)
    scopes = sorted(days)
    withheld = scopes[0]
    for n, scope in enumerate(scopes[1:], start=1):
        records = days[scope]
        sid = f"DEMO-ST-{scope[0]:%Y%m%d}-{n:02d}"
        for line_no, r in enumerate(records, start=1):
            cases.statements.append({
                "statement_id": sid, "business_date": scope[0].isoformat(), "tax_office": r.tax_office,
                "region_code": r.region_code, "line_count": len(records),
                "total_amount_fen": sum(_signed(x) for x in records), "line_no": line_no,
                "voucher_no": r.voucher_no, "id_type": r.id_type, "id_number": r.id_number,
                "levy_item": str(r.levy_item), "period_start": r.period_start.isoformat(),
                "period_end": r.period_end.isoformat(), "amount_fen": r.amount_fen,
                "paid_at": r.paid_at.isoformat(), "credited_on": r.credited_on.isoformat() if r.credited_on else "",
                "kind": str(r.kind), "original_voucher_no": r.original_voucher_no or "",
                "original_tax_office": r.original_tax_office or ""})
    cases.expected["statements"] = {
        "sent": len(scopes) - 1, "lines": len(cases.statements),
        "missing": [{"business_date": withheld[0].isoformat(), "tax_office": withheld[1], "region_code": withheld[2],
                     "ledger_rows": len(days[withheld]), "recorded_fen": sum(_signed(r) for r in days[withheld])}],
    }


__all__ = ["CasePerson", "Cases", "build_cases"]
