"""Entitlement view (待遇资格): per person and coverage year, is the person covered, from when, and why.

The view is a dict ``{person_id: row}``; a row holds the person's history
(``row["history"]``, a :class:`ledger.domain.history.PersonHistory`) and the figures
derived from it:

``row["years"][Y]``
    one resident coverage year (城乡居民, scheme ``RESIDENT``): enrollment, assessed /
    subsidised / paid / refunded / outstanding / overpaid fen, whether and when it
    was funded, the coverage periods, the waiting period with its arithmetic,
    continuous years and the critical-illness cap increment, ``policy_version`` and
    ``sources`` (figure -> ids of the events that produced it). See
    :func:`derive` for every key.
``row["employee_years"][Y]``
    the employee scheme (职工) summarised per year, with one entry per month.
``row["summary"]``
    the person now: residence, the enrollment in force, subsidised statuses,
    personal-account balance, contribution months.

:func:`EntitlementProjection.apply` folds one event; :func:`covered_on` answers "is
this person covered on day D, and why (not)?" in a clerk's words.

Rules this view applies where the domain brief leaves a choice (each is a reading,
not a policy number; the numbers all come from the policy table):

* **Due.** The assessment in force (the latest ``ContributionAssessed`` of the
  year) when there is one; otherwise the view derives it from the policy table and
  the person's statuses (``resident_assessment``) and marks it ``assessed=False``.
  The year is judged against the due in force *now*: a subsidy granted later counts
  for the whole year when the table's status rule says so.
* **Funded (缴费到位).** A year is funded on day D when the person has a resident
  enrollment for the year that started on or before D and net paid by D plus the
  subsidy (once the subsidising status is valid, from its ``valid_from``) reaches the
  individual share. A fully subsidised person who pays nothing is funded from the
  later of enrollment and status. The funding date is the ``paid_on`` given to
  ``waiting_period``.
* **Refunds and reversals.** A refund (退费) counts from its own date: if it brings
  the net paid below the due, the year is no longer covered *from the refund date*
  (covered through the day before). A reversal (冲正) removes its payment entirely,
  as if it had never been made. Paying again later starts a new funding period with
  its own waiting period.
* **Back payment (补缴).** A year whose funding was completed only after 31 Dec of
  that year is *back-paid*: it gives no coverage for that year and does not count as
  an insured year, but it counts in ``back_paid_years`` of a later year's waiting
  period when it was completed on or before that later year's funding date.
* **Insured year** (for gaps, "covered last year" and continuity): a resident year
  funded on its 31 Dec and still funded now (even if a waiting period meant no
  benefit days), or a year with at least one paid employee month.
* **Gap years, first time.** ``gap_years`` counts the consecutive non-insured years
  right before Y, back to the first coverage year of the person's earliest
  enrollment (any scheme) and never before the first year the policy book has for
  the region (the ledger's horizon: earlier years are unknown, not uncovered). A
  person never insured whose earliest enrollment is for Y (or whose history starts
  before the horizon) is a first-time enrollee.
* **Enrollment's first coverage year.** An enrollment that starts inside the
  concentrated period for Y+1 (e.g. 10 Sep 2024 for 2025) is for Y+1; otherwise for
  the year it starts in.
* **Exemptions** are derived from the history: ``SUBSIDISED`` when the year's
  assessment names a subsidy category; ``NEWBORN`` when an enrollment for the year
  came through channel ``NEWBORN`` and the birth date (``Registered.birth_date``) is
  known (``waiting_period`` checks the window; coverage then starts at birth even
  before the enrollment date); ``SCHEME_SWITCH`` when the last paid employee month
  ends no more than the table's limit before the resident coverage would start.
  ``VETERAN`` cannot be derived (no event says who left the army). When several
  apply, the one giving the earliest coverage start is used.
* **Coverage ends** at 31 Dec, or at the enrollment's end date (death, moving out,
  switching scheme, duplicate resolved). A resident-to-resident transfer does *not*
  end the paid year: resident transfers take effect from the next coverage year,
  so an enrollment ended by ``TransferredOut`` still covers the paid year to 31 Dec.
* **Continuity** counts consecutive insured years up to and including Y; claims are
  not in the ledger, so claim-free years are 0 in ``continuity_cap_increment_fen``.
* **Employee months** are covered when net paid reaches the assessed due (or, without
  an assessment, when anything was paid) and an employee enrollment is in force.
* **A gap around a transfer** (转移接续中断) into an employee enrollment is judged by the
  domain's ``ledger.domain.transfers.gap_rule`` (receiving region's table): the whole months
  between the out half's date and the receiving enrollment's start. At most
  ``back_pay_max_gap_months``: a paid (back-paid) month of the gap covers its days
  (retroactive) though no enrollment was in force; longer: the first waiting months from the
  receiving enrollment's start month are not covered even when paid (``transfer_waiting``).
  Resident-to-resident transfers take effect from the next coverage year; their gaps are
  the resident waiting rule's (gap years), so the rule is not applied to them again.

Dates of payments, refunds and reversals are the events' ``effective_date`` (the
business date of ``paid_at`` in China Standard Time, as the ledger records it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ledger.domain import transfers as transfer_rules
from ledger.domain.errors import DomainError
from ledger.domain.person import voucher_key
from ledger.domain.person_rules import counts_for_months
from ledger.domain.places import ANKANG_REGIONS
from ledger.policy import rules
from ledger.policy.model import PolicyTable, fen_text

from ledger.domain.history import (
    Enrollment,
    Payment,
    PersonHistory,
    ResidenceRecord,
    SubsidyGrant,
    paid_share,
    payment_share,
    residence_on,
    subsidy_statuses,
)

RESIDENT = "RESIDENT"
EMPLOYEE = "EMPLOYEE"

#: Enrollment end reasons after which the paid resident year stays covered to 31 Dec.
COVERAGE_CONTINUES_AFTER = frozenset({"TRANSFERRED_OUT"})


def _jan1(year: int) -> date:
    return date(year, 1, 1)


def _dec31(year: int) -> date:
    return date(year, 12, 31)


def _day_before(day: date) -> date:
    return day - timedelta(days=1)


def _month_bounds(month: str) -> tuple[date, date]:
    year, mon = int(month[:4]), int(month[5:7])
    first = date(year, mon, 1)
    last = (date(year + 1, 1, 1) if mon == 12 else date(year, mon + 1, 1)) - timedelta(days=1)
    return first, last


def _uniq(ids: list[str | None]) -> list[str]:
    out: list[str] = []
    for i in ids:
        if i and i not in out:
            out.append(i)
    return out


# --------------------------------------------------------------------------- policy rules, answered once
class _RuleAnswers:
    """The answers of the pure policy rules (ledger.policy.rules) per table and arguments, across persons.

    A county's persons ask the same few questions of the same few tables: the due of a
    year without statuses, the waiting period of a payment day with the same history
    flags (each answer is written out as text, which is most of its cost). The rules
    are pure and tables are frozen, so an answer (or the DomainError raised, raised
    afresh) is kept under the table's identity (the table itself is kept with it, so
    that identity stays its own). The memory is bounded: past ``limit`` answers it
    starts again.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self.answers: dict[tuple[Any, ...], tuple[PolicyTable, Any]] = {}

    def ask(self, key: tuple[Any, ...], table: PolicyTable, rule: Any, *args: Any, **kwargs: Any) -> Any:
        found = self.answers.get(key)
        if found is None or found[0] is not table:
            try:
                answer = rule(table, *args, **kwargs)
            except DomainError as err:
                answer = err
            if len(self.answers) >= self.limit:
                self.answers.clear()
            found = self.answers[key] = (table, answer)
        answer = found[1]
        if isinstance(answer, DomainError):
            raise type(answer)(answer.code, answer.message, **answer.details)
        return answer


_RULES = _RuleAnswers()


def _resident_assessment(table: PolicyTable, categories: set[str]) -> rules.ResidentAssessment:
    key = ("assessment", id(table), frozenset(categories))
    return _RULES.ask(key, table, rules.resident_assessment, categories)


def _waiting_period(table: PolicyTable, *, paid_on: date, first_time: bool, gap_years: int, back_paid_years: int,
                    exemption: str | None, covered_last_year: bool, born_on: date | None = None,
                    switch_gap_months: int | None = None) -> rules.WaitingDecision:
    key = ("waiting", id(table), paid_on, first_time, gap_years, back_paid_years, exemption, covered_last_year,
           born_on, switch_gap_months)
    return _RULES.ask(key, table, rules.waiting_period, paid_on=paid_on, first_time=first_time,
                      gap_years=gap_years, back_paid_years=back_paid_years, exemption=exemption,
                      covered_last_year=covered_last_year, born_on=born_on, switch_gap_months=switch_gap_months)


def region_label(region_code: str | None) -> str:
    if not region_code:
        return "unknown region"
    name = ANKANG_REGIONS.get(region_code)
    return f"{region_code} {name}" if name else region_code


# --------------------------------------------------------------------------- derivation
class _Derivation:
    """Everything derived from one person's history; memoises the per-year funding."""

    def __init__(self, history: PersonHistory, policies: Any) -> None:
        self.h = history
        self.policies = policies
        self.pid = history.person_id
        self.statuses = subsidy_statuses(history)
        self._funding: dict[int, dict[str, Any]] = {}
        # Asked again and again while deriving (per enrollment, per year): answered once.
        self._first_years: dict[tuple[Any, ...], int] = {}
        self._last_years: dict[tuple[Any, ...], int | None] = {}
        self._resident_enrollments: dict[int, list[Enrollment]] = {}
        self._main: dict[int, Enrollment | None] = {}
        self._insured: dict[int, bool] = {}
        self._by_period: dict[str, list[Payment]] | None = None
        self._regions: set[str | None] | None = None
        # A policy cache answers "no table" without raising (most first_year questions have none).
        self._find = getattr(policies, "find", None)

    # ---------------------------------------------------------------- payments per period
    def _payments_by_period(self) -> dict[str, list[Payment]]:
        index = self._by_period
        if index is None:
            index = self._by_period = {}
            for _, p in sorted(self.h.payments.items()):
                for period in dict.fromkeys(p.periods):
                    index.setdefault(period, []).append(p)
        return index

    def payments_for(self, period: str, levy_item: str | None = None) -> list[Payment]:
        """:func:`ledger.domain.history.payments_for`, from an index built once (a person may have many months)."""
        return [p for p in self._payments_by_period().get(period, ()) if levy_item is None or p.levy_item == levy_item]

    def paid_by(self, period: str, day: date | None = None, levy_item: str | None = None) -> int:
        """:func:`ledger.domain.history.paid_by` over the period's payments only (a sum: their order does not matter)."""
        return sum(paid_share(p, period, day, levy_item) for p in self._payments_by_period().get(period, ()))

    # ---------------------------------------------------------------- policy
    def table(self, region: str | None, year: int) -> PolicyTable | None:
        if not region:
            return None
        if self._find is not None:
            return self._find(region, year)
        try:
            return self.policies.get(region, year)
        except DomainError:
            return None

    def _no_table(self, year: int) -> bool:
        """True when no region the history names has a table for ``year``: then :meth:`region_for`'s has none.

        (A person enrolled since 2019 is asked about every year since; the policy book
        starts later. Saves looking for the year's region in the history.)
        """
        regions = self._regions
        if regions is None:
            h = self.h
            regions = self._regions = (
                {a.region_code for a in h.assessments.values()}
                | {p.region_code for p in h.payments.values()}
                | {e.region_code for e in h.enrollments})
        for region in regions:
            if self.table(region, year) is not None:
                return False
        return True

    def horizon(self, region: str) -> int | None:
        try:
            years = self.policies.years(region)
        except DomainError:
            return None
        return min(years) if years else None

    # ---------------------------------------------------------------- enrollments
    def first_year(self, enrollment: Enrollment) -> int:
        start = enrollment.start_date
        key = (enrollment.scheme, enrollment.region_code, start)
        found = self._first_years.get(key)
        if found is None:
            found = start.year
            if enrollment.scheme == RESIDENT:
                following = self.table(enrollment.region_code, start.year + 1)
                if following is not None and start >= following.resident.concentrated_start:
                    found = start.year + 1
            self._first_years[key] = found
        return found

    def last_year(self, enrollment: Enrollment) -> int | None:
        if enrollment.end_date is not None:
            return enrollment.end_date.year
        region = enrollment.region_code
        if region in self._last_years:
            return self._last_years[region]
        try:
            years = self.policies.years(region)
        except DomainError:
            years = None
        found = self._last_years[region] = max(years) if years else None
        return found

    def resident_enrollments_for(self, year: int) -> list[Enrollment]:
        """The resident enrollments for a coverage year (the same list each time: do not change it)."""
        out = self._resident_enrollments.get(year)
        if out is not None:
            return out
        out = []
        for e in self.h.enrollments:
            if e.scheme != RESIDENT:
                continue
            last = self.last_year(e)
            if last is not None and self.first_year(e) <= year <= last:
                out.append(e)
        self._resident_enrollments[year] = out
        return out

    def main_enrollment(self, year: int) -> Enrollment | None:
        if year in self._main:
            return self._main[year]
        candidates = self.resident_enrollments_for(year)
        originals = [e for e in candidates if not e.duplicate_of] or candidates
        found = self._main[year] = max(originals, key=lambda e: e.start_date) if originals else None
        return found

    @staticmethod
    def cover_end(enrollment: Enrollment) -> date | None:
        """Last day an enrollment carries resident coverage (None: open)."""
        end = enrollment.end_date
        if end is None:
            return None
        if enrollment.end_reason in COVERAGE_CONTINUES_AFTER:
            return _dec31(end.year)
        return end

    def enrolled_intervals(self, year: int, newborn_from: date | None = None) -> list[tuple[date, date]]:
        """Days of the year with a resident enrollment carrying coverage, merged into (first, last) runs.

        ``newborn_from``: a newborn enrolled through channel NEWBORN is covered from birth.
        """
        spans = []
        for e in self.resident_enrollments_for(year):
            start = e.start_date
            if newborn_from is not None and e.channel == "NEWBORN":
                start = min(start, newborn_from)
            end = self.cover_end(e) or _dec31(year)
            start, end = max(start, _jan1(year)), min(end, _dec31(year))
            if start <= end:
                spans.append((start, end))
        merged: list[tuple[date, date]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1] + timedelta(days=1):
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def duplicate_in(self, first: date, last: date) -> list[Enrollment]:
        """Enrollments flagged duplicate (重复参保) that overlapped their original within [first, last]."""
        if not any(e.duplicate_of for e in self.h.enrollments):
            return []  # most persons: no enrollment flagged duplicate
        by_id = {e.enrollment_id: e for e in self.h.enrollments}
        out = []
        for e in self.h.enrollments:
            original = by_id.get(e.duplicate_of) if e.duplicate_of else None
            if original is None:
                continue
            start = max(e.start_date, original.start_date, first)
            end = min(e.end_date or date.max, original.end_date or date.max, last)
            if start <= end:
                out.append(e)
        return out

    # ---------------------------------------------------------------- assessment
    def region_for(self, year: int) -> str | None:
        a = self.h.assessments.get(str(year))
        if a is not None and a.scheme == RESIDENT:
            return a.region_code
        live = [p for p in self.payments_for(str(year), RESIDENT) if p.reversal is None]
        if live:
            return max(live, key=lambda p: p.paid_on).region_code
        main = self.main_enrollment(year)
        return main.region_code if main else None

    def assessment(self, year: int, table: PolicyTable) -> dict[str, Any]:
        a = self.h.assessments.get(str(year))
        if a is not None and a.scheme == RESIDENT:
            category = a.subsidy_category
            return {
                "recorded": True,
                "standard_fen": a.standard_fen,
                "subsidy_fen": a.subsidy_fen,
                "due_fen": a.due_fen,
                "due_date": a.due_date,
                "subsidy_category": category,
                "policy_version": a.policy_version,
                "assessed_on": a.assessed_on,
                "event_ids": [a.event_id],
                "superseded_event_ids": list(a.supersedes),
            }
        categories = rules.categories_for_year(table, [(c, f, u) for c, f, u, _ in self.statuses])
        result = _resident_assessment(table, categories)
        return {
            "recorded": False,
            "standard_fen": result.standard_fen,
            "subsidy_fen": result.subsidy_fen,
            "due_fen": result.due_fen,
            "due_date": result.due_date,
            "subsidy_category": result.subsidy_category,
            "policy_version": result.policy_version,
            "assessed_on": None,
            "event_ids": [],
            "superseded_event_ids": [],
        }

    def subsidy_grants(self, table: PolicyTable, category: str | None) -> list[SubsidyGrant]:
        if category is None:
            return []
        return [g for c, f, u, g in self.statuses if c == category and rules.status_counts(table, c, f, u)]

    # ---------------------------------------------------------------- funding
    def funding(self, year: int) -> dict[str, Any] | None:
        """Funding of a resident year (None: no table for it): money figures and funded intervals."""
        if year in self._funding:
            return self._funding[year]
        if self._no_table(year):
            self._funding[year] = None  # type: ignore[assignment]
            return None
        region = self.region_for(year)
        table = self.table(region, year)
        if table is None:
            self._funding[year] = None  # type: ignore[assignment]
            return None
        period = str(year)
        assessment = self.assessment(year, table)
        standard, subsidy = assessment["standard_fen"], assessment["subsidy_fen"]
        grants = self.subsidy_grants(table, assessment["subsidy_category"])
        subsidy_since = None
        if subsidy > 0:
            subsidy_since = min((g.valid_from for g in grants), default=assessment["assessed_on"] or _jan1(year))
        enrollments = self.resident_enrollments_for(year)
        enrolled_since = min((e.start_date for e in enrollments), default=None)
        payments = self.payments_for(period, RESIDENT)
        live = [p for p in payments if p.reversal is None]

        def funded_on(day: date) -> bool:
            if enrolled_since is not None and day < enrolled_since:
                return False
            paid = self.paid_by(period, day, RESIDENT)
            sub = subsidy if subsidy_since is not None and day >= subsidy_since else 0
            return paid + sub >= standard and paid + sub > 0

        points = sorted(
            {p.paid_on for p in live}
            | {r.on for p in live for r in p.refunds}
            | ({subsidy_since} if subsidy_since else set())
            | ({enrolled_since} if enrolled_since else set())
        )
        intervals: list[dict[str, Any]] = []
        current: dict[str, Any] | None = None
        for day in points:
            funded = funded_on(day)
            if funded and current is None:
                current = {"from": day, "until": None, "ended_by": []}
                intervals.append(current)
            elif not funded and current is not None:
                current["until"] = day
                current["ended_by"] = [r.event_id for p in live for r in p.refunds if r.on == day]
                current = None
        gross = sum(payment_share(p.amount_fen, p.periods, period) for p in live)
        net = self.paid_by(period, None, RESIDENT)
        open_interval = intervals[-1] if intervals and intervals[-1]["until"] is None else None
        insured = open_interval is not None and open_interval["from"] <= _dec31(year)
        back_paid_on = open_interval["from"] if open_interval is not None and not insured else None
        result = {
            "region": region,
            "table": table,
            "assessment": assessment,
            "grants": grants,
            "subsidy_since": subsidy_since,
            "enrollments": enrollments,
            "payments": payments,
            "live": live,
            "gross_fen": gross,
            "net_fen": net,
            "intervals": intervals,
            "insured": insured,
            "back_paid_on": back_paid_on,
        }
        self._funding[year] = result
        return result

    def funding_ids(self, year: int, until: date | None) -> list[str]:
        f = self.funding(year)
        if f is None:
            return []
        return [p.event_id for p in f["live"] if until is None or p.paid_on <= until]

    # ---------------------------------------------------------------- employee months
    def employee_months(self) -> dict[str, dict[str, Any]]:
        months = {p for p, a in self.h.assessments.items() if a.scheme == EMPLOYEE}
        for p in self.h.payments.values():
            if p.levy_item == EMPLOYEE:
                months.update(p.periods)
        out = {}
        for month in sorted(months):
            first, last = _month_bounds(month)
            a = self.h.assessments.get(month)
            if a is not None and a.scheme != EMPLOYEE:
                a = None
            enrollment = None
            for e in self.h.enrollments:
                if e.scheme == EMPLOYEE and e.start_date <= last and (e.end_date is None or e.end_date >= first):
                    enrollment = e
            payments = self.payments_for(month, EMPLOYEE)
            live = [p for p in payments if p.reversal is None]
            net = self.paid_by(month, None, EMPLOYEE)
            due = a.due_fen if a else None
            covered = (net >= due and net > 0) if due is not None else net > 0
            region = a.region_code if a else (enrollment.region_code if enrollment else
                                                  (live[0].region_code if live else None))
            out[month] = {
                "month": month,
                "region_code": region,
                "employer_id": enrollment.employer_id if enrollment else None,
                "flexible": bool(enrollment and enrollment.flexible),
                "enrollment_id": enrollment.enrollment_id if enrollment else None,
                "assessed": a is not None,
                "due_fen": due,
                "due_date": a.due_date if a else None,
                "employer_fen": a.employer_fen if a else None,
                "employee_fen": a.employee_fen if a else None,
                "net_paid_fen": net,
                "outstanding_fen": max(0, due - net) if due is not None else 0,
                "overpayment_fen": max(0, net - due) if due is not None else 0,
                "covered": covered,
                "transfer_waiting": None,
                "transfer_back_paid": None,
                "policy_version": a.policy_version if a else None,
                "sources": {
                    "assessment": [a.event_id] if a else [],
                    "paid": [p.event_id for p in live],
                    "refunded": [r.event_id for p in live for r in p.refunds],
                    "reversed": [x for p in payments if p.reversal for x in (p.event_id, p.reversal.event_id)],
                    "enrollment": _uniq([enrollment.event_id, enrollment.end_event_id]) if enrollment else [],
                },
            }
        for wait in self.transfer_waits():
            for key, m in out.items():
                if wait["waiting_months"] and wait["from"] <= key < wait["to"]:
                    m["covered"] = False
                    m["transfer_waiting"] = wait["reason"]
                    m["sources"]["enrollment"] = _uniq(m["sources"]["enrollment"] + [wait["event_id"]])
                elif wait["retroactive"] and wait["gap_from"][:7] <= key <= wait["gap_until"][:7]:
                    # a back-payable gap: a paid month of it is covered for the days of the gap (追溯享受)
                    m["transfer_back_paid"] = {"from": wait["gap_from"], "until": wait["gap_until"],
                                               "reason": wait["reason"]}
                    m["sources"]["enrollment"] = _uniq(m["sources"]["enrollment"] + [wait["event_id"]])
        return out

    def transfer_waits(self) -> list[dict[str, Any]]:
        """The scheme's gap rule after a completed transfer into an employee enrollment (转移接续中断处理):
        :func:`ledger.domain.transfers.gap_rule` of the whole months between the last day covered in the
        sending region (the out half's date) and the start of the receiving enrollment, with the receiving
        region's policy table. A gap the rule lets be back-paid (at most 3 months) waits for nothing, and a
        paid (back-paid) month of it covers the gap's days (retroactive, 追溯享受) though no enrollment was in
        force then. A longer one carries its waiting
        period: the first ``waiting_months`` calendar months from the receiving enrollment's start month
        are not covered even when paid. Months as ``YYYY-MM``, ``to`` exclusive."""
        waits = []
        for t in self.h.transfers.values():
            if t.status != "DONE" or t.external or t.direction != "OUT" or not t.completed_on:
                continue
            receiving = min((e for e in self.h.enrollments if e.scheme == EMPLOYEE
                             and e.channel == "TRANSFER_IN" and e.start_date >= t.completed_on),
                            key=lambda e: e.start_date, default=None)
            if receiving is None:
                continue
            table = self.table(receiving.region_code, receiving.start_date.year)
            if table is None:
                continue
            gap = transfer_rules.gap_months(t.started_on, receiving.start_date)
            rule = transfer_rules.gap_rule(gap, table.transfer, table.resident.waiting)
            if not rule.gap_months:
                continue
            first = receiving.start_date.replace(day=1)
            waits.append({"transfer_id": t.transfer_id, "waiting_months": rule.waiting_months,
                          "from": f"{first:%Y-%m}", "to": f"{rules.add_months(first, rule.waiting_months):%Y-%m}",
                          "retroactive": rule.retroactive,
                          "gap_from": (t.started_on + timedelta(days=1)).isoformat(),
                          "gap_until": _day_before(receiving.start_date).isoformat(),
                          "reason": rule.explanation, "event_id": t.in_event_id})
        return waits

    def employee_insured(self, year: int, months: dict[str, dict[str, Any]]) -> bool:
        return any(m["net_paid_fen"] > 0 for k, m in months.items() if k.startswith(f"{year:04d}-"))

    # ---------------------------------------------------------------- history questions
    def insured(self, year: int, months: dict[str, dict[str, Any]]) -> bool:
        """An insured year (see the module docstring): resident year settled in time, or a paid employee month."""
        found = self._insured.get(year)
        if found is None:  # ``months`` is the one employee_months() of this derivation
            f = self.funding(year)
            found = self._insured[year] = bool(f and f["insured"]) or self.employee_insured(year, months)
        return found

    def earliest_enrollment_year(self) -> int | None:
        return min((self.first_year(e) for e in self.h.enrollments), default=None)

    def waiting_inputs(self, year: int, region: str, paid_on: date, months: dict) -> dict[str, Any]:
        covered_last_year = self.insured(year - 1, months)
        horizon = self.horizon(region) or year
        earliest = self.earliest_enrollment_year()
        floor = max(horizon, earliest if earliest is not None else year)
        gap = back = 0
        gap_list: list[int] = []
        back_list: list[int] = []
        y = year - 1
        while not covered_last_year and y >= floor and not self.insured(y, months):
            gap += 1
            gap_list.append(y)
            f = self.funding(y)
            if f and f["back_paid_on"] is not None and f["back_paid_on"] <= paid_on:
                back += 1
                back_list.append(y)
            y -= 1
        note = None
        first_time = not covered_last_year and gap == 0
        if first_time and earliest is not None and earliest < year:
            note = (f"the ledger's history for {region_label(region)} starts in {horizon}; "
                    f"treated as a first enrollment")
        return {
            "history_horizon": self.history_horizon(year, floor, horizon, y, covered_last_year),
            "paid_on": paid_on,
            "first_time": first_time,
            "covered_last_year": covered_last_year,
            "gap_years": gap,
            "back_paid_years": back,
            "gap_year_list": gap_list,
            "back_paid_year_list": back_list,
            "note": note,
        }

    def history_horizon(self, year: int, floor: int, horizon: int, stopped_at: int,
                        covered_last_year: bool) -> dict[str, Any] | None:
        """The policy horizon, when the gap count for ``year`` ran back to it (政策视界).

        The count of years without coverage stops at the first year the ledger knows for the person: the
        region's first policy table (``POLICY_HORIZON``) or the person's first recorded enrollment when it
        is later (``FIRST_RECORD``: history before it was not migrated). Years before it are unknown, not
        uncovered, so the waiting period rests on them: say so, never silently. ``None`` when the count
        ended on an insured year (or last year was covered), or when the person was born in or after it.
        """
        if covered_last_year or stopped_at >= floor:
            return None
        born = self.h.birth_date
        if born is not None and born.year >= floor:
            return None
        basis = "POLICY_HORIZON" if floor <= horizon else "FIRST_RECORD"
        gap = year - floor
        counted = f"此前连续 {gap} 年未参保的年数只计到 {floor} 年" if gap else f"按首次参保处理"
        if basis == "POLICY_HORIZON":
            text = (f"{floor} 年以前的参保情况超出本账本的政策视界（最早的政策参数表为 {horizon} 年度），无从得知；"
                    f"{counted}，更早的断保年份未计入待遇等待期。")
        else:
            text = (f"本账本最早记录此人参保为 {floor} 年度（此前的历史未迁移），{floor} 年以前的参保情况无从得知；"
                    f"{counted}，更早的断保年份未计入待遇等待期。")
        return {"known_from": floor, "basis": basis, "policy_horizon": horizon, "text": text}

    def switch_gap_months(self, start: date, months: dict) -> int | None:
        paid = [k for k, m in months.items() if m["net_paid_fen"] > 0 and _month_bounds(k)[1] < start]
        if not paid:
            return None
        last = max(paid)
        ly, lm = int(last[:4]), int(last[5:7])
        return max(0, (start.year * 12 + start.month) - (ly * 12 + lm) - 1)

    def decide(self, year: int, table: PolicyTable, paid_on: date, f: dict, months: dict,
               problems: list[str]) -> tuple[rules.WaitingDecision | None, dict[str, Any]]:
        inputs = self.waiting_inputs(year, table.region_code, paid_on, months)
        waiting = table.resident.waiting
        candidates: list[tuple[str | None, dict[str, Any]]] = [(None, {})]
        if f["assessment"]["subsidy_category"] and "SUBSIDISED" in waiting.exemptions:
            candidates.append(("SUBSIDISED", {}))
        born = self.h.birth_date
        if (born is not None and born <= paid_on and "NEWBORN" in waiting.exemptions
                and any(e.channel == "NEWBORN" for e in f["enrollments"])):
            candidates.append(("NEWBORN", {"born_on": born}))
        switch = self.switch_gap_months(max(paid_on, table.resident.coverage_start), months)
        if (switch is not None and "SCHEME_SWITCH" in waiting.exemptions
                and switch <= (waiting.scheme_switch_max_gap_months or 0)):
            candidates.append(("SCHEME_SWITCH", {"switch_gap_months": switch}))
        decisions = []  # (decision, rank on a tie: a tried-but-refused exemption explains most, then none)
        for exemption, extra in candidates:
            try:
                decisions.append(_waiting_period(
                    table, paid_on=paid_on, first_time=inputs["first_time"], gap_years=inputs["gap_years"],
                    back_paid_years=inputs["back_paid_years"], exemption=exemption,
                    covered_last_year=inputs["covered_last_year"], **extra,
                ))
                rank = 1 if exemption is None else (2 if decisions[-1].exemption else 0)
                decisions[-1] = (decisions[-1], rank)
            except DomainError as err:
                problems.append(f"{year}: waiting period not computed ({err.code}: {err.message})")
        if not decisions:
            return None, inputs
        best = min(decisions, key=lambda d: (d[0].coverage_start, d[0].months, d[1]))[0]
        if inputs["note"]:
            best = rules.WaitingDecision(best.months, best.coverage_start, f"{best.reason} ({inputs['note']})",
                                         best.exemption, best.policy_version)
        return best, inputs

    # ---------------------------------------------------------------- one resident year
    def resident_year(self, year: int, months: dict) -> dict[str, Any] | None:
        f = self.funding(year)
        if f is None:
            return None
        table: PolicyTable = f["table"]
        a = f["assessment"]
        problems: list[str] = []
        main = self.main_enrollment(year)
        entries = []
        periods: list[tuple[date, date]] = []
        waiting_ids: list[str] = []
        for interval in f["intervals"]:
            entry: dict[str, Any] = {
                "from": interval["from"], "until": interval["until"], "ended_by": list(interval["ended_by"]),
                "back_payment": interval["from"] > _dec31(year), "waiting": None, "coverage": [],
            }
            entries.append(entry)
            if entry["back_payment"]:
                continue
            decision, inputs = self.decide(year, table, interval["from"], f, months, problems)
            if decision is None:
                continue
            entry["waiting"] = {
                "months": decision.months, "coverage_start": decision.coverage_start, "reason": decision.reason,
                "exemption": decision.exemption, "policy_version": decision.policy_version,
                **{k: inputs[k] for k in ("paid_on", "first_time", "covered_last_year", "gap_years",
                                          "back_paid_years", "gap_year_list", "back_paid_year_list",
                                          "history_horizon")},
            }
            if not table.resident.waiting.enabled or decision.exemption:
                entry["waiting"]["history_horizon"] = None  # the decision does not rest on earlier years
            last = _dec31(year) if interval["until"] is None else min(_dec31(year), _day_before(interval["until"]))
            newborn_from = self.h.birth_date if decision.exemption == "NEWBORN" else None
            for start, end in self.enrolled_intervals(year, newborn_from):
                s, e = max(start, decision.coverage_start), min(end, last)
                if s <= e:
                    entry["coverage"].append((s, e))
            periods.extend(entry["coverage"])
            waiting_ids += self.funding_ids(year, interval["from"])
            for y in inputs["back_paid_year_list"]:
                waiting_ids += self.funding_ids(y, None)
            if inputs["covered_last_year"]:
                waiting_ids += self.funding_ids(year - 1, None)
            if decision.exemption == "NEWBORN":
                waiting_ids.append(self.h.registered_event_id)
            if decision.exemption == "SUBSIDISED":
                waiting_ids += [g.event_id for g in f["grants"]]
        current = next((e for e in reversed(entries) if e["waiting"] is not None), None)
        waiting = current["waiting"] if current else None
        if f["live"] and not f["enrollments"]:
            problems.append(f"{year}: paid but no resident enrollment for the year; no coverage until enrolled")

        continuous = 0
        y = year
        continuity_ids: list[str] = []
        while self.insured(y, months):
            continuous += 1
            continuity_ids += self.funding_ids(y, None)
            y -= 1
        cap_increment = rules.continuity_cap_increment_fen(table, continuous, 0)

        net, due = f["net_fen"], a["due_fen"]
        funded_now = bool(f["intervals"]) and f["intervals"][-1]["until"] is None
        if main is None:
            state = "NONE"
        else:
            state = "ACTIVE" if main.end_date is None else "ENDED"
        duplicates = self.duplicate_in(_jan1(year), _dec31(year))
        enrollment_ids = _uniq([x for e in f["enrollments"] for x in (e.event_id, e.end_event_id)])
        grant_ids = _uniq([x for g in f["grants"] for x in (g.event_id, g.revoke_event_id)])
        refund_ids = [r.event_id for p in f["live"] for r in p.refunds]
        reversed_ids = [x for p in f["payments"] if p.reversal for x in (p.event_id, p.reversal.event_id)]
        # A derived (not recorded) due rests on the enrollment and the statuses that made it.
        basis_ids = a["event_ids"] if a["recorded"] else enrollment_ids
        money_ids = _uniq(basis_ids + grant_ids + [p.event_id for p in f["live"]] + refund_ids)
        residence = self.h.residence[-1] if self.h.residence else None
        return {
            "person_id": self.pid,
            "year": year,
            "scheme": RESIDENT,
            "region_code": f["region"],
            "grid_code": (main and main.grid_code) or (residence.grid if residence else None),
            "enrollment_id": main.enrollment_id if main else None,
            "enrollment_channel": main.channel if main else None,
            "enrollment_state": state,
            "enrollment_start": main.start_date if main else None,
            "enrollment_end": main.end_date if main else None,
            "enrollment_end_reason": main.end_reason if main else None,
            "duplicate_enrollment": bool(duplicates),
            "assessed": a["recorded"],
            "standard_fen": a["standard_fen"],
            "subsidy_fen": a["subsidy_fen"],
            "due_fen": due,
            "due_date": a["due_date"],
            "subsidy_category": a["subsidy_category"],
            "subsidy_since": f["subsidy_since"],
            "assessment_policy_version": a["policy_version"],
            "paid_fen": f["gross_fen"],
            "refunded_fen": sum(r.amount_fen for p in f["live"] for r in p.refunds),
            "reversed_fen": sum(p.amount_fen for p in f["payments"] if p.reversal),
            "net_paid_fen": net,
            "outstanding_fen": max(0, due - net),
            "overpayment_fen": max(0, net - due),
            "funded": funded_now,
            "funded_on": f["intervals"][-1]["from"] if funded_now else None,
            "back_paid_on": f["back_paid_on"],
            "insured": f["insured"],
            "funding": entries,
            "coverage_periods": periods,
            "coverage_start": periods[0][0] if periods else None,
            "coverage_end": periods[-1][1] if periods else None,
            "waiting_months": waiting["months"] if waiting else None,
            "waiting_until": (_day_before(waiting["coverage_start"]) if waiting and waiting["months"] else None),
            "waiting_reason": waiting["reason"] if waiting else None,
            "waiting_exemption": waiting["exemption"] if waiting else None,
            "first_time": waiting["first_time"] if waiting else None,
            "covered_last_year": waiting["covered_last_year"] if waiting else self.insured(year - 1, months),
            "gap_years": waiting["gap_years"] if waiting else None,
            "back_paid_years": waiting["back_paid_years"] if waiting else None,
            # The policy horizon (政策视界): the waiting period rests on years the ledger cannot see (before its
            # first policy table, or before the person's first record when history was not migrated).
            "history_unknown_before": (waiting["history_horizon"] or {}).get("known_from") if waiting else None,
            "history_horizon_basis": (waiting["history_horizon"] or {}).get("basis") if waiting else None,
            "history_note": (waiting["history_horizon"] or {}).get("text") if waiting else None,
            "continuous_years": continuous,
            "cap_increment_fen": cap_increment,
            "policy_version": table.policy_version,
            "sources": {
                "enrollment": enrollment_ids,
                "assessment": a["event_ids"] + a["superseded_event_ids"],
                "subsidy": grant_ids,
                "paid": [p.event_id for p in f["live"]],
                "refunded": refund_ids,
                "reversed": reversed_ids,
                "outstanding": money_ids,
                "overpayment": list(money_ids),
                "coverage": _uniq(
                    enrollment_ids
                    + [x for e in entries if e["coverage"] for x in self.funding_ids(year, e["from"])]
                    + [x for e in entries for x in e["ended_by"]]
                    + (grant_ids if f["subsidy_since"] else [])
                ),
                "waiting": _uniq(waiting_ids),
                "continuity": _uniq(continuity_ids),
                "duplicate_enrollment": _uniq([d.event_id for d in duplicates]),
            },
            "problems": problems,
        }

    # ---------------------------------------------------------------- the person now
    def summary(self, months: dict) -> dict[str, Any]:
        active = [e for e in self.h.enrollments if e.end_date is None]
        originals = [e for e in active if not e.duplicate_of]
        current = (originals or active or [None])[0]
        state = "ACTIVE" if active else ("ENDED" if self.h.enrollments else "NONE")
        residence = self.h.residence[-1] if self.h.residence else None
        paid_months = {k for k, p in (
            (k, p) for p in self.h.payments.values() if p.levy_item == EMPLOYEE
            and counts_for_months(p.amount_fen, sum(r.amount_fen for r in p.refunds), p.reversal is not None)
            for k in p.periods)}
        month_ids = [p.event_id for p in self.h.payments.values()
                     if p.levy_item == EMPLOYEE and p.reversal is None]
        transfer_in_ids = [t.in_event_id for t in self.h.transfers.values() if t.in_event_id]
        return {
            "person_id": self.pid,
            "birth_date": self.h.birth_date,
            "household_grid": residence.grid if residence else None,
            "residence_status": residence.status if residence else None,
            "residence_since": residence.on if residence else None,
            "enrollment_state": state,
            "enrollment": None if current is None else {
                k: getattr(current, k) for k in ("enrollment_id", "scheme", "region_code", "grid_code", "channel",
                                        "start_date", "flexible", "employer_id")},
            "duplicate_enrollment": len(active) > 1,
            "subsidy_statuses": [
                {"category": c, "valid_from": fr, "valid_until": u, "document_no": g.document_no,
                 "department": g.department, "event_id": g.event_id}
                for c, fr, u, g in self.statuses
            ],
            "account_balance_fen": sum(x.amount_fen for x in self.h.account),
            "contribution_months": len(paid_months) + self.h.transferred_in_months,
            "transferred_in_months": self.h.transferred_in_months,
            "open_transfers": sorted(t.transfer_id for t in self.h.transfers.values()
                                     if t.direction == "OUT" and t.completed_on is None),
            "sources": {
                "account_balance": [x.event_id for x in self.h.account],
                "contribution_months": _uniq(month_ids + transfer_in_ids),
                "residence": [r.event_id for r in self.h.residence],
                "enrollment": _uniq([x for e in self.h.enrollments for x in (e.event_id, e.end_event_id)]),
            },
        }

    def resident_years(self) -> list[int]:
        years: set[int] = set()
        for e in self.h.enrollments:
            last = self.last_year(e) if e.scheme == RESIDENT else None
            if last is not None:
                years.update(range(self.first_year(e), last + 1))
        for p in self.h.payments.values():
            if p.levy_item == RESIDENT:
                years.update(int(k) for k in p.periods)
        years.update(int(k) for k, a in self.h.assessments.items() if a.scheme == RESIDENT)
        return sorted(years)


def derive(history: PersonHistory, policies: Any, *, previous: dict[str, Any] | None = None,
           from_year: int | None = None) -> dict[str, Any]:
    """Every figure of the entitlement view for one person, from the history alone (pure).

    Returns ``{"summary": {...}, "years": {year: resident-year row}, "employee_years":
    {year: {"year", "months": {"YYYY-MM": month row}, "months_assessed", "months_covered",
    "due_fen", "net_paid_fen", "outstanding_fen"}}}``. A resident-year row has:
    person_id, year, scheme, region_code, grid_code, enrollment_id, enrollment_channel,
    enrollment_state (ACTIVE/ENDED/NONE), enrollment_start/_end/_end_reason,
    duplicate_enrollment, assessed, standard_fen, subsidy_fen, due_fen, due_date,
    subsidy_category, subsidy_since, assessment_policy_version, paid_fen, refunded_fen,
    reversed_fen, net_paid_fen, outstanding_fen, overpayment_fen, funded, funded_on,
    back_paid_on, insured, funding (the funded intervals, each with its waiting decision
    and coverage), coverage_periods [(first, last)], coverage_start, coverage_end,
    waiting_months, waiting_until (last waiting day), waiting_reason, waiting_exemption,
    first_time, covered_last_year, gap_years, back_paid_years, continuous_years,
    cap_increment_fen, policy_version, sources {figure: [event ids]}, problems.

    Incremental (issue 19): ``previous`` is this function's answer for the same person
    before the latest events, and ``from_year`` the first resident year those events
    may change (:func:`years_touched`). The resident years before ``from_year`` are then
    taken from ``previous`` as they are, not derived again; ``from_year`` and every later
    year, the employee years and the summary are derived. With either one None, every
    year is derived. The answer equals a full derivation's (a property test holds it).
    """
    d = _Derivation(history, policies)
    if history.merged_into is not None:
        # A record merged into another person's (参保人合并) counts nowhere: no year, no month, no due; the
        # summary says where it went, so a view shows the row as merged instead of a second person.
        return {"summary": {**d.summary({}), "merged_into": history.merged_into}, "years": {}, "employee_years": {}}
    months = d.employee_months()
    years = {}
    kept = previous["years"] if previous is not None and from_year is not None else {}
    for year, row in kept.items():
        if year < from_year:  # type: ignore[operator]
            # Later years ask whether these were insured (gap years, continuity): the kept rows answer,
            # as their funding would (the same rule: funded by 31 Dec and still funded, or a paid employee month).
            d._insured[year] = bool(row["insured"]) or d.employee_insured(year, months)
    narrowed = previous is not None and from_year is not None
    for year in d.resident_years():
        if narrowed and year < from_year:  # type: ignore[operator]
            if year in kept:
                years[year] = kept[year]
            # (else: the previous answer had no row for this year, e.g. a year before the first policy table; nothing
            # before ``from_year`` changed, so it still has none: not derived again at every event)
            continue
        row = d.resident_year(year, months)
        if row is not None:
            years[year] = row
    employee_years: dict[int, dict[str, Any]] = {}
    for key, m in months.items():
        y = employee_years.setdefault(int(key[:4]), {
            "year": int(key[:4]), "months": {}, "months_assessed": 0, "months_covered": 0,
            "due_fen": 0, "net_paid_fen": 0, "outstanding_fen": 0})
        y["months"][key] = m
        y["months_assessed"] += m["assessed"]
        y["months_covered"] += m["covered"]
        y["due_fen"] += m["due_fen"] or 0
        y["net_paid_fen"] += m["net_paid_fen"]
        y["outstanding_fen"] += m["outstanding_fen"]
    return {"summary": d.summary(months), "years": years, "employee_years": employee_years}


#: :func:`years_touched`'s answer for events that change no resident coverage year (a year after every year).
NO_YEAR = 10_000
#: Person events that change no resident coverage year: what they change (the personal account) is in the summary.
_CHANGE_NO_YEAR = frozenset({"AccountCredited", "AccountDebited"})
#: Events about money of one period: the years they touch follow from the period.
_MONEY = frozenset({"ContributionPaid", "ContributionRefunded", "ContributionReversed"})


def years_touched(history: PersonHistory, events: Any) -> int | None:
    """The first resident coverage year ``events`` may change; that year and every later one must be derived again.

    ``history`` is the person's history with ``events`` folded in; the answer is what
    :func:`derive` takes as ``from_year`` (None: every year). Conservative by design:

    * a resident payment, refund or reversal, or a resident assessment, for coverage
      year Y touches Y and every later year: a later year's gap years, back-paid years,
      "covered last year" and continuity count the years before it;
    * a personal-account movement touches no year (``NO_YEAR``): only the summary,
      which :func:`derive` always derives again;
    * anything else (registration and birth date, enrollments and their end, subsidised
      statuses, residence: the year rows' grid, transfers, employee contributions and
      assessments, events of unknown shape) touches every year: None.
    """
    first = NO_YEAR
    for event in events:
        name = _event_name(event)
        if name in _CHANGE_NO_YEAR:
            continue
        if name in _MONEY:
            payment = _payment_of(history, event, name)
            if payment is None or payment.levy_item != RESIDENT:
                return None
            periods = payment.periods
        elif name == "ContributionAssessed" and _field(event, "scheme") == RESIDENT:
            periods = [_field(event, "period")]
        else:
            return None
        try:
            first = min(first, min(int(p) for p in periods))
        except (TypeError, ValueError):  # no period, or not a coverage year: unsure
            return None
    return first


def _event_name(event: Any) -> str | None:
    if isinstance(event, dict):
        return event.get("event_type")
    return type(event).__name__


def _field(event: Any, name: str) -> Any:
    return event.get(name) if isinstance(event, dict) else getattr(event, name, None)


def _payment_of(history: PersonHistory, event: Any, name: str) -> Payment | None:
    """The payment a money event is about (a refund and a reversal name their original voucher), or None."""
    try:
        if name == "ContributionPaid":
            key = voucher_key(_field(event, "tax_office"), _field(event, "voucher_no"))
        else:
            key = voucher_key(_field(event, "original_tax_office"), _field(event, "original_voucher_no"))
    except AttributeError:  # a field missing: unsure
        return None
    return history.payments.get(key)


# --------------------------------------------------------------------------- is the person covered on D?
@dataclass(frozen=True)
class Decision:
    """Whether a person is covered on a day, and why (not), with the events and policy behind it."""

    covered: bool
    reason: str
    person_id: str
    day: date
    scheme: str | None = None
    period: str | None = None  # coverage year "2025" or employee month "2025-03"
    region_code: str | None = None
    policy_version: str | None = None
    sources: tuple[str, ...] = field(default_factory=tuple)
    #: The reason as a stable code (``COVERED_RESIDENT``, ``NOT_COVERED_UNPAID``...) and its figures (ISO days,
    #: fen, codes, JSON-plain): a surface renders it in its reader's language from the message catalogue
    #: (``[coverage_reasons]``); ``reason`` stays the English sentence for the existing readers.
    reason_code: str = ""
    reason_values: dict[str, Any] = field(default_factory=dict)


def _money_values(row: dict[str, Any]) -> dict[str, Any]:
    return {"due_fen": row["due_fen"], "due_date": row["due_date"].isoformat(), "paid_fen": row["net_paid_fen"],
            "outstanding_fen": row["outstanding_fen"]}


def _waiting_values(w: dict[str, Any]) -> dict[str, Any]:
    return {"waiting_months": w["months"], "exemption": w["exemption"], "waiting": w["reason"]}


def _money(row: dict[str, Any]) -> str:
    return (f"due {fen_text(row['due_fen'])} by {row['due_date'].isoformat()}, paid "
            f"{fen_text(row['net_paid_fen'])}, outstanding {fen_text(row['outstanding_fen'])}")


def _explain_resident(row: dict[str, Any], day: date) -> tuple[bool, str, list[str], str, dict[str, Any]]:
    """(covered, English sentence, sources, reason code, the code's values)."""
    year, src = row["year"], row["sources"]
    where = f"resident scheme {year} in {region_label(row['region_code'])}"
    at = {"year": year, "region_code": row["region_code"]}
    for entry in row["funding"]:
        for first, last in entry["coverage"]:
            if first <= day <= last:
                w = entry["waiting"]
                return (True, f"covered: {where}, {first.isoformat()} to {last.isoformat()}; {w['reason']}",
                        src["coverage"] + src["waiting"], "COVERED_RESIDENT",
                        {**at, "first": first.isoformat(), "last": last.isoformat(), **_waiting_values(w)})
    # Not covered: find the funding period the day falls in, or the nearest one.
    for entry in row["funding"]:
        if entry["from"] <= day and (entry["until"] is None or day < entry["until"]):
            w = entry["waiting"]
            if w is None:
                break
            start = w["coverage_start"]
            if day < start:
                if start > _dec31(year):
                    return (False, f"not covered: {where}: the waiting period runs past the end of {year} ({w['reason']})",
                            src["waiting"], "NOT_COVERED_WAITING_PAST_YEAR", {**at, **_waiting_values(w)})
                return False, (f"not covered: in waiting period until {_day_before(start).isoformat()}, covered from "
                               f"{start.isoformat()} ({w['reason']})"), src["waiting"], "NOT_COVERED_WAITING", {
                    **at, "until": _day_before(start).isoformat(), "start": start.isoformat(), **_waiting_values(w)}
            if row["enrollment_end"] is not None and day > row["enrollment_end"]:
                return False, (f"not covered: the resident enrollment ended on {row['enrollment_end'].isoformat()} "
                               f"({row['enrollment_end_reason']})"), src["enrollment"], "NOT_COVERED_ENROLLMENT_ENDED", {
                    **at, "ended": row["enrollment_end"].isoformat(), "end_reason": row["enrollment_end_reason"]}
            return (False, f"not covered: no resident enrollment in force on {day.isoformat()}", src["enrollment"],
                    "NOT_COVERED_NO_ENROLLMENT_ON_DAY", {**at, "day": day.isoformat()})
    ended = [e for e in row["funding"] if e["until"] is not None and e["until"] <= day]
    later = [e for e in row["funding"] if e["from"] > day]
    if later:
        entry = later[0]
        if entry["back_payment"]:
            return False, (f"not covered: the {year} contribution was paid on {entry['from'].isoformat()}, after the "
                           f"year ended (back payment 补缴): it shortens later waiting periods but pays no benefits "
                           f"for {year}"), src["paid"], "NOT_COVERED_BACK_PAYMENT", {**at, "paid_on": entry["from"].isoformat()}
        nxt = f"; covered from {entry['coverage'][0][0].isoformat()}" if entry["coverage"] else ""
        prefix = "not covered"
        if ended:
            prefix = f"not covered since {ended[-1]['until'].isoformat()} (refund)"
        return False, f"{prefix}: the {year} contribution was paid only on {entry['from'].isoformat()}{nxt}", src["paid"], (
            "NOT_COVERED_PAID_LATE"), {**at, "paid_on": entry["from"].isoformat(),
                                       "covered_from": entry["coverage"][0][0].isoformat() if entry["coverage"] else None,
                                       "refunded_on": ended[-1]["until"].isoformat() if ended else None}
    if ended:
        until = ended[-1]["until"]
        return False, (f"not covered since {until.isoformat()}: a refund on {until.isoformat()} brought the amount "
                       f"paid for {year} below the amount due ({_money(row)})"), src["refunded"] + src["outstanding"], (
            "NOT_COVERED_REFUNDED"), {**at, "refunded_on": until.isoformat(), **_money_values(row)}
    if row["enrollment_state"] == "NONE":
        return (False, f"not covered: not enrolled in the resident scheme for {year}", src["paid"],
                "NOT_ENROLLED_RESIDENT", at)
    return (False, f"not covered: the {year} resident contribution is not paid ({_money(row)})", src["outstanding"],
            "NOT_COVERED_UNPAID", {**at, **_money_values(row)})


def _employee_enrollment_on(history: PersonHistory, day: date) -> Enrollment | None:
    for e in history.enrollments:
        if e.scheme == EMPLOYEE and e.start_date <= day and (e.end_date is None or day <= e.end_date):
            return e
    return None


def covered_on(view: dict[str, Any], person_id: Any, day: date) -> Decision:
    """Is this person covered on ``day``, and why (not)? Answers in words a clerk understands."""
    pid = str(person_id)
    row = view.get(pid)
    if row is None:
        return Decision(False, "not covered: the ledger has no record of this person", pid, day,
                        reason_code="NO_RECORD")
    return row_covered_on(row, day)


def row_covered_on(row: dict[str, Any], day: date) -> Decision:
    """:func:`covered_on` for one row of the view."""
    return Decision(*decision_fields(row, day, residence_on(row["history"], day)))


#: A decision's fields in :class:`Decision`'s order: (covered, reason, person_id, day, scheme, period,
#: region_code, policy_version, sources, reason_code, reason_values).
DecisionFields = tuple[bool, str, str, date, "str | None", "str | None", "str | None", "str | None", tuple[str, ...],
                       str, dict[str, Any]]


def decision_fields(row: dict[str, Any], day: date, residence: ResidenceRecord | None) -> DecisionFields:
    """:func:`row_covered_on` as a plain tuple, given the residence record in force on ``day``.

    For callers asking about many days (the gap spells): no dataclass built per answer.
    """
    history = row["history"]
    pid = history.person_id
    if residence is not None and residence.status == "DECEASED" and residence.on < day:  # the day itself is covered
        return (False, f"not covered: reported deceased on {residence.on.isoformat()} (household registry)",
                pid, day, None, None, None, None, (residence.event_id,), "DECEASED", {"on": residence.on.isoformat()})

    resident = row["years"].get(day.year)
    month = f"{day.year:04d}-{day.month:02d}"
    employee_year = row["employee_years"].get(day.year)
    employee = employee_year["months"].get(month) if employee_year is not None else None
    enrollment = _employee_enrollment_on(history, day)

    answer = None
    if resident is not None:
        covered, reason, sources, code, values = _explain_resident(resident, day)
        answer = (covered, reason, pid, day, RESIDENT, str(day.year), resident["region_code"],
                  resident["policy_version"], tuple(_uniq(sources)), code, values)
        if covered:
            return answer
    back_paid = employee.get("transfer_back_paid") if employee is not None else None
    if (enrollment is None and back_paid and employee["covered"]  # type: ignore[index]
            and back_paid["from"] <= day.isoformat() <= back_paid["until"]):
        return (True, (f"covered: employee scheme, {month} back-paid for the gap between the two halves of a "
                       f"transfer ({back_paid['reason']})"), pid, day, EMPLOYEE, month,
                employee["region_code"], employee["policy_version"],  # type: ignore[index]
                tuple(_uniq(employee["sources"]["paid"] + employee["sources"]["enrollment"])),  # type: ignore[index]
                "COVERED_EMPLOYEE_BACK_PAID", {"month": month, "detail": back_paid["reason"]})
    if enrollment is not None:
        m_sources = (tuple(_uniq(employee["sources"]["assessment"] + employee["sources"]["paid"]
                                 + employee["sources"]["enrollment"])) if employee else (enrollment.event_id,))
        if employee is not None and employee["covered"]:
            due = f" of {fen_text(employee['due_fen'])} due" if employee["due_fen"] is not None else ""
            return (True, (f"covered: employee scheme in {region_label(enrollment.region_code)}, "
                           f"{month} paid ({fen_text(employee['net_paid_fen'])}{due})"),
                    pid, day, EMPLOYEE, month, enrollment.region_code, employee["policy_version"], m_sources,
                    "COVERED_EMPLOYEE", {"month": month, "region_code": enrollment.region_code,
                                         "paid_fen": employee["net_paid_fen"], "due_fen": employee["due_fen"]})
        if answer is None or resident["enrollment_state"] == "NONE":
            values: dict[str, Any] = {"month": month}
            if employee is None:
                why, code = f"no employee contribution recorded for {month}", "NOT_COVERED_EMPLOYEE_NO_CONTRIBUTION"
            elif employee.get("transfer_waiting"):
                why = f"{month} is in the waiting period after a transfer: {employee['transfer_waiting']}"
                code, values["detail"] = "NOT_COVERED_EMPLOYEE_TRANSFER_WAITING", employee["transfer_waiting"]
            else:
                due = fen_text(employee["due_fen"]) if employee["due_fen"] is not None else "not assessed"
                why = (f"employee contributions for {month} not paid (due {due}, paid "
                       f"{fen_text(employee['net_paid_fen'])})")
                code = "NOT_COVERED_EMPLOYEE_UNPAID"
                values.update(due_fen=employee["due_fen"], paid_fen=employee["net_paid_fen"])
            return (False, f"not covered: {why}", pid, day, EMPLOYEE, month, enrollment.region_code,
                    employee["policy_version"] if employee else None, m_sources, code, values)
    if answer is not None:
        return answer
    return (False, f"not covered: no enrollment or contribution for {day.year} in the ledger", pid, day,
            None, None, None, None, tuple(row["summary"]["sources"]["enrollment"]), "NOT_COVERED_NO_ENROLLMENT",
            {"year": day.year})
