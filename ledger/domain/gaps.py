"""Coverage gaps per grid (应保尽保): who lives in a grid and is not covered, and why; coverage rates.

A query over the entitlement view (:mod:`ledger.domain.coverage`), whose rows
already hold everything needed (the registry's residence history, enrollments,
transfers, statuses, and per coverage year the funding and coverage periods). The
answer depends on the day asked about (a waiting period ends, a transfer
completes), so it is computed at query time rather than folded; an adapter can
store :func:`coverage_rates` per grid each night.

**Who counts.** People the household registry says live in the grid on the
evaluation day: the latest residence record on or before that day
(``Registered.household_grid``, then every ``ResidenceRecorded``) has status
``RESIDENT`` and a grid. The deceased and the moved-out do not count. People the
ledger only knows from a tax payment have no household grid until the registry
reports them.

**Evaluation day** for coverage year Y asked on ``as_of``: ``as_of`` itself when it
falls in Y; 1 Jan Y when asked before Y (e.g. during the concentrated period, "who
will not be covered on 1 January"); 31 Dec Y when asked after Y.

**Covered** means :func:`ledger.domain.coverage.row_covered_on` says so for that day
(either scheme) *and* the person's record has no open problem on that day. Two record
problems make a person count as not covered whatever the entitlement says (the
entitlement answer is kept in ``detail``):

* an open transfer (医保关系转移接续): a transfer-out half effective on or before the
  day whose transfer-in half is not recorded or takes effect only after the day. The
  sending region suspends the insurance relation until the receiving region completes
  the transfer in, so the person is insured nowhere meanwhile -- from the out half's
  date, with no grace period (the 10 + 5 working days of 医保办发〔2021〕43号 are the
  agencies' time limits, not a period of coverage). A completed resident transfer
  keeps the paid year covered (:mod:`ledger.domain.coverage`). A transfer-in half
  without an out half in the ledger is no problem: the person is enrolled here;
* a duplicate enrollment (重复参保): two or more enrollments overlapping on the day (any
  schemes, any regions, flagged duplicate by the ledger or not), where an enrollment
  overlaps from its start date until the day *before* its end date: one that ends on
  the day another starts is a handover (a transfer completed the same day, a scheme
  switch), and ending the duplicate on day D resolves it from D. It is an error to
  resolve, not a state to keep, so the person does not count as covered until it is
  resolved, even when one of the enrollments is paid.

**One reason per person not covered**, the first that applies in this order (the
order of the generator's truth, ``entrypoints.simulation.county.expected_outcome``):

1. ``TRANSFER_INCOMPLETE`` -- an open transfer (above) on the day;
2. ``DUPLICATE_ENROLLMENT`` -- two or more enrollments overlapping on the day (above);
3. ``SUBSIDISED_NOT_COVERED`` -- a subsidised status counts for Y and the person is
   not enrolled, or Y is not paid (资助参保对象未参保缴费: subsidised people must be
   100% covered; ``detail`` says which). A subsidised person with a record problem
   gets that problem's reason, one who paid and is in a waiting period gets
   ``IN_WAITING_PERIOD`` (the label would be false otherwise); ``subsidised`` marks
   them all;
4. ``NOT_ENROLLED`` -- no enrollment in force on the day (started on or before it, and
   ending on or after it: the end date is the enrollment's last day, as in
   :mod:`ledger.domain.coverage`);
5. ``LAPSED`` -- enrolled, Y not paid on the day, insured in Y-1, and *nothing* paid for
   Y by the day: net of refunds dated on or before the day, a reversed (冲正) payment
   counting as never made (断保: the renewal to chase);
6. ``ENROLLED_UNPAID`` -- enrolled and Y not paid on the day otherwise: never insured in
   Y-1, or paid part of what is due for Y (underpaid), whatever Y-1 was. 5 and 6
   exclude each other, so their order only matters for reading;
7. ``IN_WAITING_PERIOD`` -- Y is paid but coverage starts later (待遇等待期).

"Y paid on the day" is the entitlement view's funding (a resident funding period
open on the day, or the day's employee month covered); "insured in Y-1" its insured
year (a resident year funded on its 31 Dec, or an employee month paid).

The gap list is ordered by :data:`REASONS` (subsidised people not enrolled or not paid
first, then the record problems, then the others), grid and person; that list order is
not the order the reasons are decided in.

**Rates** (per grid and per township, the first 9 digits of the grid code): counts,
and rates in basis points rounded *down* (so 100.00% means everyone, never "nearly
everyone"); ``None`` when nobody counts. A display percentage is given as text.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from ledger.domain.errors import DomainError
from ledger.domain.transfers import TransferCalendar
from ledger.policy import rules

from ledger.domain.coverage import decision_fields, region_label
from ledger.domain.history import (
    Enrollment,
    Payment,
    PersonHistory,
    Transfer,
    payment_share,
    residence_on,
    subsidy_statuses,
)

#: The reasons in the order of the gap list (subsidised people not enrolled or not paid
#: first); :func:`gap_reason` decides them in the order of :data:`PRECEDENCE`.
REASONS = (
    "SUBSIDISED_NOT_COVERED",
    "DUPLICATE_ENROLLMENT",
    "TRANSFER_INCOMPLETE",
    "NOT_ENROLLED",
    "ENROLLED_UNPAID",
    "LAPSED",
    "IN_WAITING_PERIOD",
)

#: The reasons in the order they are decided (the first that applies).
PRECEDENCE = (
    "TRANSFER_INCOMPLETE",
    "DUPLICATE_ENROLLMENT",
    "SUBSIDISED_NOT_COVERED",
    "NOT_ENROLLED",
    "LAPSED",
    "ENROLLED_UNPAID",
    "IN_WAITING_PERIOD",
)

#: Chinese labels for the grid worker's page.
REASON_LABELS = {
    "SUBSIDISED_NOT_COVERED": "资助参保对象未参保缴费",
    "DUPLICATE_ENROLLMENT": "重复参保",
    "TRANSFER_INCOMPLETE": "转移接续未完成",
    "NOT_ENROLLED": "未参保登记",
    "ENROLLED_UNPAID": "已登记未缴费",
    "LAPSED": "断保（上年参保，本年未续缴）",
    "IN_WAITING_PERIOD": "待遇等待期内",
}


def evaluation_day(year: int, as_of: date) -> date:
    return min(max(as_of, date(year, 1, 1)), date(year, 12, 31))


def lives_in(row: dict[str, Any], day: date) -> str | None:
    """The grid the registry says the person lives in on ``day`` (None: not resident, dead, moved out)."""
    if row["history"].merged_into is not None:
        return None  # merged into another person's record: counted there
    record = residence_on(row["history"], day)
    if record is None or record.status != "RESIDENT" or not record.grid:
        return None
    return record.grid


def subsidy_category(row: dict[str, Any], year: int, grid: str, policies: Any) -> str | None:
    """The subsidised category that counts for the year (None: not subsidised)."""
    y = row["years"].get(year)
    if y is not None:
        return y["subsidy_category"]
    try:
        table = policies.get(grid[:6], year)
    except DomainError:
        return None
    statuses = [(c, f, u) for c, f, u, _ in subsidy_statuses(row["history"])]
    category, _ = rules.resident_subsidy(table, rules.categories_for_year(table, statuses))
    return category


def _in_force(enrollment: Enrollment, day: date) -> bool:
    return enrollment.start_date <= day and (enrollment.end_date is None or day <= enrollment.end_date)


def _insured_in(row: dict[str, Any], year: int) -> bool:
    y = row["years"].get(year)
    if y is not None and y["insured"]:
        return True
    months = row["employee_years"].get(year, {"months": {}})["months"]
    return any(m["net_paid_fen"] > 0 for m in months.values())


def _funded_on(row: dict[str, Any], year: int, day: date) -> bool:
    y = row["years"].get(year)
    if y is not None and any(e["from"] <= day and (e["until"] is None or day < e["until"]) for e in y["funding"]):
        return True
    month = row["employee_years"].get(year, {"months": {}})["months"].get(f"{day.year:04d}-{day.month:02d}")
    return bool(month and month["covered"])


def _paid_anything_for(history: PersonHistory, year: int, day: date) -> bool:
    """True when something is paid, net, for ``year`` (its resident year or any employee month) by ``day``.

    A reversal (冲正) removes its payment whatever its date; a refund (退费) counts from its own date.
    """
    return _paid_anything_by(_year_payments(history, year), day)


def _year_payments(history: PersonHistory, year: int) -> list[tuple[Payment, list[str]]]:
    """(payment, its periods of ``year``) of every payment not reversed with a period in the year."""
    prefix = f"{year:04d}"
    out = []
    for p in history.payments.values():
        if p.reversal is not None:
            continue
        keys = [k for k in p.periods if k[:4] == prefix]
        if keys:
            out.append((p, keys))
    return out


def _paid_anything_by(payments: list[tuple[Payment, list[str]]], day: date) -> bool:
    """:func:`_paid_anything_for` over :func:`_year_payments`."""
    for p, keys in payments:
        if p.paid_on > day:
            continue
        net = p.amount_fen - sum(r.amount_fen for r in p.refunds if r.on <= day)
        if any(payment_share(net, p.periods, k) > 0 for k in keys):
            return True
    return False


def open_transfers(row: dict[str, Any], day: date) -> list[Transfer]:
    """Transfer-out halves effective by ``day`` whose in half is missing or takes effect after it, oldest first."""
    return sorted(
        (t for t in row["history"].transfers.values()
         if t.direction == "OUT" and t.started_on <= day
         and (t.completed_on is None or t.completed_on > day)),
        key=lambda t: (t.started_on, t.transfer_id),
    )


def enrollments_in_force(row: dict[str, Any], day: date) -> list[Enrollment]:
    """Every enrollment in force on ``day`` (any scheme, any region; its end date is its last day), as recorded."""
    return [e for e in row["history"].enrollments if _in_force(e, day)]


def overlapping_enrollments(row: dict[str, Any], day: date) -> list[Enrollment]:
    """The enrollments counted for a duplicate on ``day``: started by then and not ending on or before it."""
    return [e for e in row["history"].enrollments
            if e.start_date <= day and (e.end_date is None or day < e.end_date)]


def record_problem(row: dict[str, Any], day: date, policies: Any = None) -> tuple[str, str, list[str]] | None:
    """(reason, text, source event ids) of an open transfer or a duplicate enrollment on ``day``; None if neither.

    Either one makes the person count as not covered whatever the entitlement says
    (see the module docstring). With ``policies``, an open transfer's text names the day its
    in half is due (the receiving region's time limit in working days, 转移接续时限), so a
    clerk reading the gap list knows from when it is overdue.
    """
    h = row["history"]
    if not h.transfers and len(h.enrollments) < 2:
        return None  # most persons: nothing to find
    transfers = open_transfers(row, day)
    if transfers:
        t = transfers[-1]
        by_id = {e.enrollment_id: e for e in h.enrollments}
        left = by_id.get(t.enrollment_id)
        origin = region_label(left.region_code) if left else "the sending region"
        text = (f"transfer {t.transfer_id} out of {origin} to {region_label(t.counterpart_region)} on "
                f"{t.started_on.isoformat()} has no transfer in: the insurance relation is suspended until "
                f"the receiving region completes it (转移接续未完成){_due_text(t, policies)}")
        return "TRANSFER_INCOMPLETE", text, [x.out_event_id for x in transfers]
    active = overlapping_enrollments(row, day)
    if len(active) > 1:
        listed = ", ".join(f"{e.scheme} in {region_label(e.region_code)} from {e.start_date.isoformat()}"
                           for e in active)
        text = f"{len(active)} enrollments in force ({listed}): duplicate enrollment (重复参保) to resolve"
        return "DUPLICATE_ENROLLMENT", text, [e.event_id for e in active]
    return None


def _due_text(transfer: Transfer, policies: Any) -> str:
    """'; due by D (N working days)' for an open transfer, from the receiving region's policy tables; '' without."""
    if policies is None:
        return ""
    region, year = transfer.counterpart_region, transfer.started_on.year
    tables = []
    for y in (year, year + 1):
        try:
            tables.append(policies.get(region, y).transfer)
        except (DomainError, AttributeError):  # another province, a year without a table, a stand-in book
            continue
    if not tables:
        return ""
    calendar = TransferCalendar.from_policies(tables)
    due = calendar.add_working_days(transfer.started_on, calendar.receiving_working_days)
    return (f"; the receiving region must complete it by {due.isoformat()} ({calendar.receiving_working_days} "
            f"working days, 转入地办结时限), overdue after that (超期)")


def gap_reason(row: dict[str, Any], year: int, day: date, subsidised: bool) -> tuple[str, list[str]]:
    """The one reason (see the module docstring) a person who lives in a grid is not covered on ``day``."""
    problem = record_problem(row, day)
    if problem is not None:
        return problem[0], problem[2]
    return _reason_without_problem(row, year, day, subsidised)


def _reason_without_problem(row: dict[str, Any], year: int, day: date, subsidised: bool) -> tuple[str, list[str]]:
    """:func:`gap_reason` for a day on which :func:`record_problem` found nothing."""
    return YearLines(row, year, None).reason(day, subsidised), []


#: The keys of a gap line but ``day``, in the order :func:`person_gap` gives them (a spell keeps these).
LINE_KEYS = (
    "person_id", "year", "grid_code", "township_code", "region_code", "covered", "reason", "label", "detail",
    "subsidised", "subsidy_category", "outstanding_fen", "scheme", "policy_version", "sources",
)


class YearLines:
    """:func:`person_gap` for one row and coverage year, asked about many days (the gap spells).

    What does not depend on the day is looked up once: the row's parts, whether the
    record can have a problem at all (a transfer, a second enrollment), the subsidy
    category per grid, whether the person was insured the year before, the payments
    for the year. :meth:`fields` gives a line as a tuple in :data:`LINE_KEYS` order
    (no dict per day asked); :func:`person_gap` is :meth:`fields` for one day.
    """

    __slots__ = ("row", "year", "policies", "categories", "pid", "residence", "enrollments", "maybe_problem",
                 "outstanding", "_insured_before", "_payments")

    def __init__(self, row: dict[str, Any], year: int, policies: Any,
                 categories: dict[str, str | None] | None = None) -> None:
        h = row["history"]
        self.row = row
        self.year = year
        self.policies = policies
        self.categories = {} if categories is None else categories
        self.pid = h.person_id
        # A record merged into another person's counts in no grid (the person kept does): 应保尽保 counts a person once.
        self.residence = h.residence if h.merged_into is None else []
        self.enrollments = h.enrollments
        self.maybe_problem = bool(h.transfers) or len(self.enrollments) >= 2  # (record_problem's own test)
        y = row["years"].get(year)
        self.outstanding = y.get("outstanding_fen") if y else None
        self._insured_before: bool | None = None
        self._payments: list[tuple[Payment, list[str]]] | None = None

    def fields(self, day: date) -> tuple[Any, ...] | None:
        """The line on ``day`` (an evaluation day of the year) as a tuple in :data:`LINE_KEYS` order; None if not in a grid."""
        residence = None  # residence_on: the latest record on or before the day, event order breaking ties
        for record in self.residence:
            if record.on <= day:
                residence = record
        if residence is None or residence.status != "RESIDENT" or not residence.grid:
            return None
        grid = residence.grid
        categories = self.categories
        if grid in categories:
            category = categories[grid]
        else:
            category = categories[grid] = subsidy_category(self.row, self.year, grid, self.policies)
        covered, detail, _, _, scheme, _, _, policy_version, sources, *_ = decision_fields(self.row, day, residence)
        problem = record_problem(self.row, day, self.policies) if self.maybe_problem else None
        if problem is not None:
            reason, text, reason_sources = problem
            detail = f"not counted as covered: {text}; entitlement: {detail}"
            covered = False
            sources = list(dict.fromkeys(list(sources) + reason_sources))
        elif covered:
            reason = None
            sources = list(sources)  # unique already
        else:
            reason = self.reason(day, category is not None)
            sources = list(dict.fromkeys(sources))  # (the reason itself names no events)
        return (self.pid, self.year, grid, grid[:9], grid[:6], covered, reason,
                REASON_LABELS[reason] if reason else None, detail, category is not None, category,
                self.outstanding, scheme, policy_version, sources)

    def reason(self, day: date, subsidised: bool) -> str:
        """:func:`gap_reason` for a day on which :func:`record_problem` found nothing (see the module docstring)."""
        if not any(_in_force(e, day) for e in self.enrollments):  # enrollments_in_force
            return "SUBSIDISED_NOT_COVERED" if subsidised else "NOT_ENROLLED"
        if not _funded_on(self.row, self.year, day):
            if subsidised:
                return "SUBSIDISED_NOT_COVERED"
            if self.insured_before() and not self.paid_anything(day):
                return "LAPSED"
            return "ENROLLED_UNPAID"
        return "IN_WAITING_PERIOD"

    def insured_before(self) -> bool:
        """Insured in the year before (:func:`_insured_in`), asked once."""
        if self._insured_before is None:
            self._insured_before = _insured_in(self.row, self.year - 1)
        return self._insured_before

    def paid_anything(self, day: date) -> bool:
        """:func:`_paid_anything_for` the year by ``day``, over the payments for the year picked once."""
        if self._payments is None:
            self._payments = _year_payments(self.row["history"], self.year)
        return _paid_anything_by(self._payments, day)


def person_gap(row: dict[str, Any], year: int, as_of: date, policies: Any,
               categories: dict[str, str | None] | None = None) -> dict[str, Any] | None:
    """The person's line for the year: None if not living in a grid; ``reason`` None if covered.

    ``covered`` is the entitlement's answer unless a record problem (open transfer,
    duplicate enrollment) overrides it; ``detail`` then names the problem, followed by
    the entitlement's own answer. ``categories``: a dict kept by a caller asking about
    many days of the same row and year, in which the subsidy category per grid is
    remembered (it does not depend on the day); :class:`YearLines` keeps the rest too.
    """
    day = evaluation_day(year, as_of)
    fields = YearLines(row, year, policies, categories).fields(day)
    if fields is None:
        return None
    return {"person_id": fields[0], "year": fields[1], "day": day, **dict(zip(LINE_KEYS[2:], fields[2:]))}
