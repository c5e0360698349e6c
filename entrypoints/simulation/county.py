"""A synthetic county (模拟县): people, the feeds they produce, and the known truth.

:func:`generate_county` builds an Ankang-like county, deterministic by seed:
townships (street offices 001-099, towns 100-199, townships 200-399) with villages
and communities (12-digit grid codes), households, and people with valid resident ID
numbers, Chinese names and a scheme (employee, flexible worker, resident). Over a
timeline it lets them live one contribution season: the agency's migration of
existing members, the coverage year ``Y-1`` for continuity history, then the season
for coverage year ``Y`` (concentrated period 1 Sep - 31 Dec of ``Y-1``, extended
window, late payers and back payers), subsidised-group statuses granted and revoked,
births, deaths, moves, transfers between Ankang counties and duplicate enrollments,
with the noise real feeds carry (resends, refunds and reversals of real vouchers,
wrong amounts, unknown persons, malformed rows).

Timeline (all instants UTC; every business time falls 08:00-22:00 Beijing time, so
its UTC date is its Beijing date):

* ``start`` (default 1 Sep ``Y-2``): the registry's snapshot of everyone in a grid;
  the next days, the subsidised statuses in force, the batch import of existing
  members (employees at the counter with their employer), and the ``Y-1`` assessment;
* ``Y-1`` concentrated period: ``Y-1`` payments of the members covered in ``Y-1``;
* ``Y`` concentrated period (from 1 Sep ``Y-1``) to ``as_of`` (default 31 Mar ``Y``):
  the ``Y`` assessment, payments and all the life of the season.

The **truth** (:class:`CountyTruth`) is the expected outcome for coverage year ``Y``
as of ``as_of``, computed by :func:`expected_outcome` from the generator's own
decisions (the facts it emitted), never by the ledger.

Feeds are lists in time order: :attr:`County.resident_records`,
:attr:`County.status_records`, :attr:`County.tax_records`, :attr:`County.clerk_actions`,
and :attr:`County.malformed_rows` for the decoding path. :meth:`County.apply_to`
replays everything through a real :class:`~ledger.application.Ledger`.

Everything is drawn from one ``random.Random(seed)``; nothing iterates a set or uses
``hash()``, so the same arguments give the same county, byte for byte.
"""
from __future__ import annotations

import calendar
import gc
import random
import time
from bisect import bisect_right
import functools
from functools import lru_cache
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

from ledger.domain.identity import make_resident_id, resident_id_check_char
from infra.places import SAMPLE_PLACES, load_places
from ledger.domain.places import ANKANG_REGIONS, PlaceNames
from ledger.domain.vocabulary import EnrollmentChannel, PaymentKind, ResidenceStatus, Scheme
from ledger.policy import SUBSIDY_CATEGORIES, PolicyTable, StatusRule, SubsidyKind, default_policy_book
from ledger.inbound_records import ResidentRecord, StatusRecord, TaxPaymentRecord
from entrypoints.simulation import timeline
from entrypoints.simulation.statements import DailyStatement, InjectedDiscrepancy, build_statements
from entrypoints.simulation.timeline import (
    ASSESS,
    ENROLL,
    RESIDENCE,
    STATUS,
    TAX,
    TRANSFER_IN,
    TRANSFER_OUT,
    Action,
    ApplySummary,
    Assessment,
    Enrollment,
    ExpectedError,
    MalformedRow,
    TransferIn,
    TransferOut,
)

# --------------------------------------------------------------------------- vocabulary
# Why a person is not covered (the grid worker's gap reasons), in order of precedence.
TRANSFER_INCOMPLETE = "TRANSFER_INCOMPLETE"  # a transfer half left alone: insured nowhere
DUPLICATE_ENROLLMENT = "DUPLICATE_ENROLLMENT"  # two enrollments in force (重复参保), to resolve
SUBSIDISED_NOT_COVERED = "SUBSIDISED_NOT_COVERED"  # holds a subsidised status, yet not covered
NOT_ENROLLED = "NOT_ENROLLED"  # no enrollment in force
LAPSED = "LAPSED"  # covered last year (or paid last year, employee scheme), nothing paid this year
ENROLLED_UNPAID = "ENROLLED_UNPAID"  # enrolled, due not (fully) paid
IN_WAITING_PERIOD = "IN_WAITING_PERIOD"  # paid, but the waiting period (待遇等待期) runs past as_of
GAP_REASONS = (
    TRANSFER_INCOMPLETE, DUPLICATE_ENROLLMENT, SUBSIDISED_NOT_COVERED, NOT_ENROLLED, LAPSED, ENROLLED_UNPAID,
    IN_WAITING_PERIOD,
)

# Where a person is at ``as_of``: only IN_COUNTY people count in the grid figures.
IN_COUNTY = "IN_COUNTY"
DECEASED = "DECEASED"
MOVED_OUT = "MOVED_OUT"

# The generator's plan for a person (SimPerson.plan).
EMPLOYEE = "EMPLOYEE"
FLEXIBLE = "FLEXIBLE"
RESIDENT = "RESIDENT"
# Resident payment behaviour for coverage year Y (SimPerson.behaviour).
ON_TIME = "ON_TIME"  # pays within the concentrated period
LATE = "LATE"  # pays after it: mostly in the extended window, some after that
BACK_PAY = "BACK_PAY"  # skipped Y-1, pays Y-1 back (补缴) and Y, after the concentrated period
UNDERPAY = "UNDERPAY"  # pays on time but less than due; half of them top up later
NON_PAYER = "NON_PAYER"  # pays nothing
SUBSIDY_ONLY = "SUBSIDY_ONLY"  # fully subsidised: owes nothing
NEWBORN = "NEWBORN"  # born in Y; most are enrolled and paid for within the newborn window
TRANSFERRED_IN = "TRANSFERRED_IN"  # came from another Ankang county during Y
# Resident history for Y-1 (SimPerson.history).
COVERED = "COVERED"  # enrolled and covered in Y-1 (paid on time, or fully subsidised)
GAP = "GAP"  # enrolled in Y-1 but did not pay
NEVER = "NEVER"  # never enrolled before the season

BEIJING = timezone(timedelta(hours=8))
ID_TYPE = "RESIDENT_ID"


# --------------------------------------------------------------------------- profile
@dataclass(frozen=True)
class CountyProfile:
    """The shares that shape a county. Rates are shares of ``people`` (the population at the start)
    unless the field says otherwise; every rate becomes an exact count (``round(rate * people)``).

    Scheme mix: ``employee_rate`` employee-scheme members with an employer, ``flexible_rate``
    flexible workers in the employee scheme (both aged 18-59); everyone else is in the
    resident scheme. Life in the season: ``newborn_rate`` (born in Y, added on top of
    ``people``), ``death_rate``, ``move_out_rate`` (leave the county), ``move_within_rate``
    (change grid). ``subsidy_rates``: holders of each subsidised status at the start
    (resident-scheme people; orphans are children). Residents who are not fully subsidised
    pay on time (``on_time_rate``), late (``late_rate``), back-pay Y-1 (``back_pay_rate``),
    pay too little (``underpay_rate``), or not at all (the rest, about 7.5%).
    ``subsidised_non_payer_rate``: share of fixed-subsidy holders who do not pay their part.
    ``double_payment_rate`` / ``reversal_rate``: shares of on-time payers who pay twice
    (the second voucher is refunded) or whose payment is reversed (冲正, most pay again).
    ``status_new_grant_rate`` / ``status_revocation_rate``: status changes during the season.
    ``transfer_rate`` (four kinds: out/in, completed/left incomplete), ``duplicate_rate``,
    ``employer_arrears_rate`` (share of employers who stop paying in Y).
    Noise: ``resend_rate`` (exact duplicates of tax records; half that rate for registry
    records), ``bad_record_rate`` (records the ledger must refuse), ``malformed_rate``
    (rows that fail decoding). ``min_each``: every rare scenario and every kind of bad
    record occurs at least this often once ``people >= 300``.
    """

    employee_rate: float = 0.25
    flexible_rate: float = 0.05
    newborn_rate: float = 0.008
    death_rate: float = 0.007
    move_out_rate: float = 0.01
    move_within_rate: float = 0.01
    subsidy_rates: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({
        "EXTREME_POVERTY": 0.005,
        "ORPHAN": 0.0005,
        "DE_FACTO_ORPHAN": 0.0005,
        "MIN_LIVING": 0.04,
        "RELAPSED_POVERTY": 0.002,
        "MONITORED": 0.01,
        "LOW_INCOME_MARGINAL": 0.01,
    }))
    on_time_rate: float = 0.87
    late_rate: float = 0.04
    back_pay_rate: float = 0.01
    underpay_rate: float = 0.005
    subsidised_non_payer_rate: float = 0.03
    double_payment_rate: float = 0.005
    reversal_rate: float = 0.003
    status_new_grant_rate: float = 0.004
    status_revocation_rate: float = 0.003
    transfer_rate: float = 0.002
    duplicate_rate: float = 0.001
    employer_arrears_rate: float = 0.04
    resend_rate: float = 0.01
    bad_record_rate: float = 0.002
    malformed_rate: float = 0.0005
    min_each: int = 3
    street_offices: int = 3
    towns: int = 9
    townships: int = 3


# --------------------------------------------------------------------------- places
@dataclass(frozen=True)
class Grid:
    """A village or community (村/社区): one grid worker's area."""

    code: str  # 12 digits
    name: str
    township_code: str  # 9 digits


@dataclass(frozen=True)
class Township:
    """A street office (街道, 001-099), town (镇, 100-199) or township (乡, 200-399)."""

    code: str  # 9 digits
    name: str
    kind: str  # STREET | TOWN | TOWNSHIP
    grids: tuple[Grid, ...]


@dataclass(frozen=True)
class Employer:
    employer_id: str  # unified social credit code (统一社会信用代码), 18 characters
    pay_day: int  # day of the month the employer pays
    arrears_from: int | None  # first month of Y it stops paying (欠费), if any


# --------------------------------------------------------------------------- facts
@dataclass
class SimEnrollment:
    scheme: str  # RESIDENT | EMPLOYEE
    region: str
    start: date
    flexible: bool = False
    employer_id: str | None = None
    channel: str = ""
    duplicate: bool = False
    end: date | None = None
    end_reason: str | None = None


@dataclass
class SimStatus:
    grant_id: str
    category: str
    valid_from: date
    valid_to: date | None
    granted_at: datetime
    revoked_from: date | None = None
    revoked_at: datetime | None = None


@dataclass
class SimPayment:
    voucher_no: str
    office: str
    levy: str
    region: str
    period_start: date
    period_end: date
    amount_fen: int
    paid_at: datetime
    refunds: list[tuple[int, datetime]] = field(default_factory=list)
    reversed_at: datetime | None = None

    @property
    def paid_on(self) -> date:
        """The payment's business date (Beijing time)."""
        return (self.paid_at + timedelta(hours=8)).date()

    @property
    def net_fen(self) -> int:
        return 0 if self.reversed_at is not None else self.amount_fen - sum(a for a, _ in self.refunds)


@dataclass
class SimTransfer:
    transfer_id: str
    from_region: str
    to_region: str
    out_on: date
    in_on: date | None = None


@dataclass(eq=False)
class SimPerson:
    """One person of the county: the generator's plan, and the facts it emitted for them."""

    index: int
    id_number: str
    name: str
    sex: str
    birth: date
    grid_code: str  # where the registry has them (updated by moves within the county)
    plan: str = RESIDENT  # RESIDENT | EMPLOYEE | FLEXIBLE
    behaviour: str | None = None
    history: str | None = None
    origin_region: str | None = None  # transferred-in people: the county they came from
    employer_id: str | None = None
    base_fen: int | None = None  # declared monthly contribution base (employee scheme)
    since: date | None = None  # start of the enrollment in force at the start
    died_on: date | None = None
    moved_out_on: date | None = None
    tags: list[str] = field(default_factory=list)
    # facts, as the ledger will hold them
    enrollments: list[SimEnrollment] = field(default_factory=list)
    assessed: dict[int, date] = field(default_factory=dict)
    statuses: list[SimStatus] = field(default_factory=list)
    payments: list[SimPayment] = field(default_factory=list)
    transfers: list[SimTransfer] = field(default_factory=list)

    @property
    def stop(self) -> date | None:
        """Last day the person acts in this county's feeds (death or move out)."""
        return self.died_on or self.moved_out_on

    def active_enrollments(self, day: date) -> list[SimEnrollment]:
        return [e for e in self.enrollments if e.start <= day and (e.end is None or e.end > day)]

    def open_enrollments(self) -> list[SimEnrollment]:
        return [e for e in self.enrollments if e.end is None]


# --------------------------------------------------------------------------- truth
@dataclass(frozen=True)
class PersonTruth:
    """The expected outcome for one person, coverage year Y, as of the county's ``as_of``."""

    id_number: str
    name: str
    grid_code: str
    township_code: str
    scope: str  # IN_COUNTY | DECEASED | MOVED_OUT
    scheme: str | None  # scheme of the enrollment in force (the original one, with a duplicate)
    covered: bool
    reason: str | None  # one of GAP_REASONS when not covered (None for the deceased)
    subsidised: bool
    subsidy_category: str | None
    subsidy_fen: int
    due_fen: int
    net_paid_fen: int
    outstanding_fen: int
    overpaid_fen: int
    coverage_start: date | None
    explanation: str


@dataclass
class AreaTruth:
    """Expected figures of a grid or township (people IN_COUNTY only)."""

    code: str
    name: str
    level: str  # GRID | TOWNSHIP
    population: int = 0
    covered: int = 0
    subsidised: int = 0
    subsidised_covered: int = 0
    outstanding_fen: int = 0
    gaps: dict[str, int] = field(default_factory=dict)

    def add(self, t: PersonTruth) -> None:
        self.population += 1
        self.covered += t.covered
        self.subsidised += t.subsidised
        self.subsidised_covered += t.subsidised and t.covered
        self.outstanding_fen += t.outstanding_fen
        if t.reason is not None:
            self.gaps[t.reason] = self.gaps.get(t.reason, 0) + 1

    def as_row(self) -> dict[str, Any]:
        row = dict(self.__dict__)
        row["gaps"] = dict(sorted(self.gaps.items()))
        return row


@dataclass
class CountyTruth:
    """What the county must look like after a correct replay: per person, per area, per bad record."""

    coverage_year: int
    as_of: date
    persons: list[PersonTruth] = field(repr=False)
    townships: dict[str, AreaTruth] = field(repr=False)
    grids: dict[str, AreaTruth] = field(repr=False)
    expected_errors: list[ExpectedError] = field(repr=False)
    expected_malformed: list[str] = field(repr=False)  # error codes of the malformed rows, in order
    expected_resends: dict[str, int]  # per action kind
    #: discrepancy class -> how many reconciling :attr:`County.statements` against the ledger must find
    expected_discrepancies: dict[str, int] = field(default_factory=dict)

    def reasons(self) -> dict[str, int]:
        """How many people have each gap reason (all scopes)."""
        counts = Counter(t.reason for t in self.persons if t.reason is not None)
        return {r: counts.get(r, 0) for r in GAP_REASONS}

    def error_counts(self) -> dict[str, int]:
        """Expected ledger error codes and how many records must fail with each."""
        return dict(sorted(Counter(e.code for e in self.expected_errors).items()))

    @property
    def bad_record_count(self) -> int:
        return len(self.expected_errors) + len(self.expected_malformed)

    def by_id(self) -> dict[str, PersonTruth]:
        return {t.id_number: t for t in self.persons}


# --------------------------------------------------------------------------- the county
@dataclass
class County:
    """A generated county: places, people, the time-ordered timeline of feed records and clerk actions, the truth."""

    seed: int
    region_code: str
    region_name: str
    coverage_year: int
    start: date
    as_of: date
    profile: CountyProfile = field(repr=False)
    townships: list[Township] = field(repr=False)
    employers: list[Employer] = field(repr=False)
    persons: list[SimPerson] = field(repr=False)
    actions: list[Action] = field(repr=False)
    malformed_rows: list[MalformedRow] = field(repr=False)
    truth: CountyTruth = field(repr=False)
    generation_seconds: float = 0.0
    #: the tax bureau's daily collection statements (对账单); see :mod:`entrypoints.simulation.statements`
    statements: list[DailyStatement] = field(default_factory=list, repr=False)
    #: the lines changed on purpose in :attr:`statements` (counted in ``truth.expected_discrepancies``)
    statement_injections: list[InjectedDiscrepancy] = field(default_factory=list, repr=False)

    def _records(self, kind: str) -> list[Any]:
        return [a.record for a in self.actions if a.kind == kind]

    @property
    def resident_records(self) -> list[ResidentRecord]:
        """The registry feed (户籍/常住人口): everyone in a grid, moves, births, deaths (resends included)."""
        return self._records(RESIDENCE)

    @property
    def status_records(self) -> list[StatusRecord]:
        """The civil-affairs / rural-revitalization status feed: grants and revocations."""
        return self._records(STATUS)

    @property
    def tax_records(self) -> list[TaxPaymentRecord]:
        """The tax bureau's collection feed: payments, refunds, reversals (with resends and bad rows)."""
        return self._records(TAX)

    @property
    def clerk_actions(self) -> list[timeline.ClerkAction]:
        """The agency's own actions: enrollments, assessments, transfers."""
        return [a.record for a in self.actions if a.kind in (ENROLL, ASSESS, TRANSFER_OUT, TRANSFER_IN)]

    @property
    def grids(self) -> list[Grid]:
        return [g for t in self.townships for g in t.grids]

    def apply_to(
        self, ledger: Any, *, batch_size: int = 500, progress: Callable[[int, int], None] | None = None
    ) -> ApplySummary:
        """Replay the whole timeline through ``ledger`` (a :class:`~ledger.application.Ledger`), in time order.

        Tax records go through ``record_tax_records`` in batches; every refused record is
        kept in ``summary.errors`` as (record, code): exactly ``truth.expected_errors``
        on a fresh ledger with the shipped policy tables. Resends come back as not
        applied, without error (``summary.unchanged``).
        """
        return timeline.replay(self.actions, ledger, batch_size=batch_size, progress=progress)

    def write_csv(self, directory: Any) -> list[Any]:
        return timeline.write_csv(self, directory)

    def summary(self) -> dict[str, Any]:
        kinds = Counter(a.kind for a in self.actions)
        return {
            "region": f"{self.region_code} {self.region_name}",
            "coverage_year": self.coverage_year,
            "as_of": self.as_of.isoformat(),
            "persons": len(self.persons),
            "townships": len(self.townships),
            "grids": len(self.grids),
            "actions": dict(sorted(kinds.items())),
            "reasons": self.truth.reasons(),
            "covered_in_county": sum(t.covered for t in self.truth.persons if t.scope == IN_COUNTY),
            "in_county": sum(t.scope == IN_COUNTY for t in self.truth.persons),
            "expected_errors": self.truth.error_counts(),
            "malformed_rows": len(self.malformed_rows),
            "expected_resends": dict(self.truth.expected_resends),
            "statements": len(self.statements),
            "expected_discrepancies": dict(self.truth.expected_discrepancies),
            "seconds": round(self.generation_seconds, 3),
        }


# =========================================================================== the truth rules
def expected_outcome(person: SimPerson, *, coverage_year: int, as_of: date, region_code: str,
                     policies: Any) -> PersonTruth:
    """The expected outcome of one person for coverage year ``Y`` as of ``as_of``: the test oracle.

    An independent implementation of the rules, on purpose: the ledger's rules live in
    ``ledger/domain`` (coverage.py, gaps.py, arrears.py), and this oracle writes them out a
    second time, from the generator's own facts, so the demo's truth checks and the fault
    suite compare two implementations instead of one with itself. Keep it independent:
    never call ``ledger.domain.coverage`` or ``ledger.domain.gaps`` from here.

    Computed from the facts the generator emitted for the person (enrollments, statuses,
    assessments, payments net of refunds and reversals, transfers, registry), never from
    the ledger. Policy *numbers* come from the tables of the person's region; the *rules*
    are written out here, from /work/shared/domain.md:

    1. Scope: deceased by ``as_of`` → DECEASED (not covered, no reason); moved out of the
       county → MOVED_OUT; otherwise IN_COUNTY (registry people still count here even
       when their insurance was transferred to another county).
    2. Subsidy for Y: statuses that count for Y under the table's status rule
       (ANY_DAY_IN_COVERAGE_YEAR or ON_DATE; a revocation ends a status the day before
       ``revoked_from``; a time-limited category stops at its ``until``); the most generous
       one applies, never the sum. ``subsidised`` = a subsidy above 0.
    3. Reason, first that applies: a transfer whose out half has no in half →
       TRANSFER_INCOMPLETE; two enrollments in force → DUPLICATE_ENROLLMENT (not counted
       covered until resolved); no enrollment in force → SUBSIDISED_NOT_COVERED if
       subsidised, else NOT_ENROLLED.
    4. Resident scheme: due = share - subsidy; the year is funded when net paid + subsidy
       reaches the share (a FULL subsidy with nothing paid funds it only if the person is
       enrolled AND assessed for Y). Not funded → SUBSIDISED_NOT_COVERED if subsidised,
       LAPSED if nothing was paid and the person was covered in Y-1, else ENROLLED_UNPAID.
       Funded → coverage starts per the waiting rules (国办发〔2024〕38号 as domain.md
       reads it), with ``paid_on`` = the date of the payment that completed the share:
       exempt if subsidised (from the later of paid_on and 1 Jan) or a newborn paid for
       within the newborn window (from birth); on time (by the end of the concentrated
       period) and covered in Y-1 or first-time → 1 Jan; covered in Y-1, paid in a
       waiting-free extended window → from paid_on; otherwise
       ``fixed + max(0, gap - 1 - back_paid) x per_gap`` months from the later of paid_on
       and 1 Jan (at least the repaired minimum for a repaired gap of 4+ years). Coverage
       starting after ``as_of`` → IN_WAITING_PERIOD. Where the ledger's history ends,
       so does the gap: ``first_time`` = no enrollment before the Y concentrated period
       and no payment for an earlier year; ``covered in Y-1`` = a resident enrollment in
       force on 31 Dec Y-1 and Y-1 funded by payments made by the end of the Y-1 extended
       window (or by a full subsidy, assessed); ``gap`` = 0 for a first-timer or someone
       covered in Y-1, else 1; ``back_paid`` = 1 if Y-1 is funded once later payments
       (补缴) count.
    5. Employee scheme (employer-paid or flexible): months of Y from the enrollment's
       start whose due date (table: month offset, day) is before ``as_of`` must each be
       paid (employer + employee share on the base clamped to the table's floor and
       ceiling; multi-month payments spread evenly, remainder to the first months). All
       paid → covered from the later of 1 Jan and the enrollment start. Otherwise LAPSED
       if nothing was paid for Y but something for Y-1, else ENROLLED_UNPAID.

    ``outstanding_fen`` is what is still due on the enrollment in force (0 when none);
    ``overpaid_fen`` what was paid beyond the due (a refund owed).
    """
    year = coverage_year
    township = person.grid_code[:9]
    if person.died_on is not None and person.died_on <= as_of:
        scope = DECEASED
    elif person.moved_out_on is not None and person.moved_out_on <= as_of:
        scope = MOVED_OUT
    else:
        scope = IN_COUNTY

    active = person.active_enrollments(as_of)
    primary = next((e for e in active if not e.duplicate), active[0] if active else None)
    region = primary.region if primary is not None else region_code
    table = policies.get(region, year)
    statuses = _status_intervals(person.statuses)
    category, subsidy = _best_subsidy(table, statuses)
    subsidised = subsidy > 0

    def result(covered: bool, reason: str | None, why: str, *, due: int = 0, paid: int = 0,
               outstanding: int = 0, overpaid: int = 0, start: date | None = None) -> PersonTruth:
        return PersonTruth(
            id_number=person.id_number, name=person.name, grid_code=person.grid_code, township_code=township,
            scope=scope, scheme=primary.scheme if primary is not None else None, covered=covered, reason=reason,
            subsidised=subsidised, subsidy_category=category, subsidy_fen=subsidy, due_fen=due, net_paid_fen=paid,
            outstanding_fen=outstanding, overpaid_fen=overpaid, coverage_start=start, explanation=why,
        )

    if scope == DECEASED:
        return result(False, None, f"died on {person.died_on}")
    incomplete = [t for t in person.transfers if t.in_on is None and t.out_on <= as_of]
    if incomplete:
        t = incomplete[-1]
        return result(False, TRANSFER_INCOMPLETE,
                      f"transfer {t.transfer_id} out of {t.from_region} on {t.out_on} has no transfer in")

    if primary is not None and primary.scheme == Scheme.EMPLOYEE:
        figures = _employee_figures(person, primary, year, as_of, policies)
    elif primary is not None:
        figures = _resident_figures(person, table, year, as_of, category, subsidy, policies, region_code)
    else:
        figures = None

    if len(active) > 1:
        kw = figures.amounts() if figures else {}
        return result(False, DUPLICATE_ENROLLMENT,
                      f"{len(active)} enrollments in force: "
                      + ", ".join(f"{e.scheme} {e.region} from {e.start}" for e in active), **kw)
    if primary is None:
        if subsidised:
            return result(False, SUBSIDISED_NOT_COVERED, f"holds {category} for {year} but is not enrolled")
        return result(False, NOT_ENROLLED, "no enrollment in force")
    assert figures is not None
    kw = figures.amounts()
    if figures.coverage_start is None:
        if subsidised:
            reason = SUBSIDISED_NOT_COVERED
        elif figures.nothing_paid and figures.paid_last_year:
            reason = LAPSED
        else:
            reason = ENROLLED_UNPAID
        return result(False, reason, figures.why, **kw)
    if figures.coverage_start > as_of:
        return result(False, IN_WAITING_PERIOD, figures.why, start=figures.coverage_start, **kw)
    return result(True, None, figures.why, start=figures.coverage_start, **kw)


@dataclass
class _Figures:
    due: int
    paid: int
    outstanding: int
    overpaid: int
    coverage_start: date | None  # None: not funded
    nothing_paid: bool
    paid_last_year: bool
    why: str

    def amounts(self) -> dict[str, int]:
        return {"due": self.due, "paid": self.paid, "outstanding": self.outstanding, "overpaid": self.overpaid}


def _status_intervals(statuses: Sequence[SimStatus], known_at: datetime | None = None) -> list[tuple[str, date, date | None]]:
    """(category, valid_from, last valid day) of the statuses known at ``known_at`` (all when None)."""
    out = []
    for s in statuses:
        if known_at is not None and s.granted_at > known_at:
            continue
        until = s.valid_to
        if s.revoked_from is not None and (known_at is None or s.revoked_at <= known_at):  # type: ignore[operator]
            last = s.revoked_from - timedelta(days=1)
            until = last if until is None else min(until, last)
        out.append((s.category, s.valid_from, until))
    return out


def _best_subsidy(table: PolicyTable, statuses: Sequence[tuple[str, date, date | None]]) -> tuple[str | None, int]:
    """The most generous subsidy among the statuses that count for the table's year (never the sum)."""
    resident = table.resident
    share = resident.individual_share_fen
    reference = resident.status_date if resident.status_rule is StatusRule.ON_DATE else resident.coverage_start
    best: tuple[str | None, int] = (None, 0)
    for code in SUBSIDY_CATEGORIES:  # precedence order on ties
        rule = resident.subsidies.get(code)
        if rule is None or (rule.until is not None and reference > rule.until):
            continue
        counts = False
        for category, valid_from, until in statuses:
            if category != code:
                continue
            if rule.until is not None:
                until = rule.until if until is None else min(until, rule.until)
            if until is not None and until < valid_from:
                continue
            if resident.status_rule is StatusRule.ON_DATE:
                day = resident.status_date
                counts = counts or (valid_from <= day and (until is None or day <= until))
            else:
                counts = counts or (valid_from <= resident.coverage_end and (until is None or until >= resident.coverage_start))
        if not counts:
            continue
        if rule.kind is SubsidyKind.FULL:
            amount = share
        elif rule.kind is SubsidyKind.FIXED_FEN:
            amount = min(rule.amount_fen or 0, share)
        else:
            amount = min((2 * share * (rule.percent_bp or 0) + 10_000) // 20_000, share)
        if amount > best[1]:
            best = (code, amount)
    return best


def _resident_payments(person: SimPerson, year: int, as_of: date) -> list[SimPayment]:
    return sorted(
        (p for p in person.payments if p.levy == Scheme.RESIDENT and p.period_start.year == year and p.paid_on <= as_of),
        key=lambda p: p.paid_at,
    )


def _funded_on(payments: Sequence[SimPayment], needed: int) -> date | None:
    """Date of the payment that brought the (net) total to ``needed``; None if it never did."""
    total = 0
    for p in payments:
        total += p.net_fen
        if total >= needed and p.net_fen > 0:
            return p.paid_on
    return None


def _covered_last_year(person: SimPerson, year: int, region_code: str, policies: Any) -> tuple[bool, bool]:
    """(covered in ``year``, ``year`` funded once back payments count) for a resident."""
    dec31 = date(year, 12, 31)
    enrolled = [e for e in person.enrollments if e.scheme == Scheme.RESIDENT and e.start <= dec31
                and (e.end is None or e.end > dec31)]
    region = enrolled[0].region if enrolled else region_code
    try:
        table = policies.get(region, year)
    except Exception:  # no table for that year: the ledger's history starts later
        return False, False
    share = table.resident.individual_share_fen
    _, subsidy = _best_subsidy(table, _status_intervals(person.statuses))
    window_end = table.resident.extended_window_end or table.resident.concentrated_end
    payments = [p for p in person.payments if p.levy == Scheme.RESIDENT and p.period_start.year == year]
    timely = sum(p.net_fen for p in payments if p.paid_on <= window_end)
    every = sum(p.net_fen for p in payments)
    full = subsidy >= share and year in person.assessed
    covered = bool(enrolled) and (timely + subsidy >= share and (timely > 0 or full))
    repaired = every + subsidy >= share and (every > 0 or full)
    return covered, repaired


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    y, m = day.year + index // 12, index % 12 + 1
    return date(y, m, min(day.day, calendar.monthrange(y, m)[1]))


def _resident_figures(person: SimPerson, table: PolicyTable, year: int, as_of: date, category: str | None,
                      subsidy: int, policies: Any, region_code: str) -> _Figures:
    resident = table.resident
    share = resident.individual_share_fen
    jan1 = resident.coverage_start
    due = max(0, share - subsidy)
    payments = _resident_payments(person, year, as_of)
    paid = sum(p.net_fen for p in payments)
    outstanding = max(0, due - paid)
    overpaid = max(0, paid - due)
    covered_before, repaired = _covered_last_year(person, year - 1, region_code, policies)

    def figures(start: date | None, why: str) -> _Figures:
        # Net, as the ledger counts it: a reversed (冲正) or fully refunded payment is nothing paid.
        return _Figures(due, paid, outstanding, overpaid, start, paid == 0, covered_before, why)

    if paid + subsidy < share:
        return figures(None, f"due {due} fen, paid {paid} fen: {outstanding} fen outstanding")
    paid_on = _funded_on(payments, due) if due > 0 else None
    if paid_on is None:  # funded by the subsidy alone
        if year not in person.assessed or person.assessed[year] > as_of:
            return figures(None, f"{category} pays the whole share but the year was never assessed")
        enrolled_on = min((e.start for e in person.active_enrollments(as_of)), default=jan1)
        start = max(jan1, enrolled_on)
        return figures(start, f"{category}: full subsidy, assessed; covered from {start}")
    waiting = resident.waiting
    base = max(paid_on, jan1)
    if not waiting.enabled:
        return figures(base, f"paid {paid_on}; no waiting-period rule for {year}")
    if subsidy > 0 and "SUBSIDISED" in waiting.exemptions:
        return figures(base, f"paid {paid_on}; subsidised ({category}): exempt from waiting")
    if "NEWBORN" in waiting.exemptions and person.birth <= paid_on \
            and (paid_on - person.birth).days <= (waiting.newborn_window_days or 0):
        start = max(person.birth, jan1)
        return figures(start, f"newborn paid for {(paid_on - person.birth).days} days after birth: covered from {start}")
    first_time = not any(e.start < resident.concentrated_start for e in person.enrollments) and not any(
        p.period_start.year < year for p in person.payments)
    on_time = paid_on <= resident.concentrated_end
    if on_time and (covered_before or first_time):
        who = f"covered in {year - 1}" if covered_before else "first enrollment"
        return figures(jan1, f"paid {paid_on} within the concentrated period, {who}: covered from {jan1}")
    if covered_before and resident.extended_window_waiting_free and resident.extended_window_end is not None \
            and paid_on <= resident.extended_window_end:
        return figures(base, f"paid {paid_on} in the extended window, covered in {year - 1}: covered from {base}")
    gap = 0 if (first_time or covered_before) else 1
    back_paid = 1 if gap and repaired else 0
    months = waiting.fixed_months + max(0, gap - 1 - back_paid) * waiting.per_gap_year_months
    if back_paid and gap >= waiting.repaired_min_gap_years:
        months = max(months, waiting.repaired_min_months)
    start = _add_months(base, months)
    late = "after the concentrated period" if not on_time else f"on time but not covered in {year - 1}"
    return figures(start, f"paid {paid_on} {late}; gap {gap}, back-paid {back_paid}: waiting {months} months "
                          f"from {base}, covered from {start}")


def _employee_monthly_fen(table: PolicyTable, declared_base_fen: int) -> tuple[int, int]:
    """(clamped base, employer + employee contribution) for one month."""
    emp = table.employee
    floor = (2 * emp.average_monthly_wage_fen * emp.base_floor_percent + 100) // 200
    ceiling = (2 * emp.average_monthly_wage_fen * emp.base_ceiling_percent + 100) // 200
    base = min(max(declared_base_fen, floor), ceiling)
    employer = (2 * base * emp.employer_rate_bp + 10_000) // 20_000
    employee = (2 * base * emp.employee_rate_bp + 10_000) // 20_000
    return base, employer + employee


def _employee_due_date(table: PolicyTable, year: int, month: int) -> date:
    return _due_date(table.employee.due_month_offset, table.employee.due_day, year, month)


@lru_cache(maxsize=4096)
def _due_date(month_offset: int, due_day: int, year: int, month: int) -> date:
    first = _add_months(date(year, month, 1), month_offset)
    return first.replace(day=min(due_day, calendar.monthrange(first.year, first.month)[1]))


def _month_shares(payment: SimPayment) -> dict[tuple[int, int], int]:
    months = []
    y, m = payment.period_start.year, payment.period_start.month
    while (y, m) <= (payment.period_end.year, payment.period_end.month):
        months.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    share, remainder = divmod(payment.net_fen, len(months))
    return {key: share + (1 if i < remainder else 0) for i, key in enumerate(months)}


def _employee_figures(person: SimPerson, enrollment: SimEnrollment, year: int, as_of: date, policies: Any) -> _Figures:
    table = policies.get(enrollment.region, year)
    _, monthly = _employee_monthly_fen(table, person.base_fen or 0)
    paid_by_month: dict[tuple[int, int], int] = {}
    for p in person.payments:
        if p.levy != Scheme.EMPLOYEE or p.paid_on > as_of:
            continue
        for key, amount in _month_shares(p).items():
            paid_by_month[key] = paid_by_month.get(key, 0) + amount
    required = [m for m in range(1, 13)
                if (year, m) >= (enrollment.start.year, enrollment.start.month)
                and _employee_due_date(table, year, m) < as_of]
    due = monthly * len(required)
    paid = sum(paid_by_month.get((year, m), 0) for m in required)
    unpaid = sum(max(0, monthly - paid_by_month.get((year, m), 0)) for m in required)
    paid_this_year = any(paid_by_month.get((year, m), 0) for m in range(1, 13))
    paid_last_year = any(paid_by_month.get((year - 1, m), 0) for m in range(1, 13))
    overpaid = max(0, paid - due)
    if unpaid:
        why = f"{len(required)} months due by {as_of}, {unpaid} fen unpaid"
        return _Figures(due, paid, unpaid, overpaid, None, not paid_this_year, paid_last_year, why)
    start = max(date(year, 1, 1), enrollment.start)
    return _Figures(due, paid, 0, overpaid, start, not paid_this_year, paid_last_year,
                    f"employee scheme: all {len(required)} months due by {as_of} paid")


def compute_truth(county_persons: Sequence[SimPerson], townships: Sequence[Township], *, coverage_year: int,
                  as_of: date, region_code: str, policies: Any, expected_errors: list[ExpectedError],
                  malformed: Sequence[MalformedRow], actions: Sequence[Action]) -> CountyTruth:
    """The county's truth: :func:`expected_outcome` per person, summed per grid and township."""
    policies = policies if isinstance(policies, _TableCache) else _TableCache(policies)
    persons = [expected_outcome(p, coverage_year=coverage_year, as_of=as_of, region_code=region_code,
                                policies=policies) for p in county_persons]
    grids = {g.code: AreaTruth(g.code, g.name, "GRID") for t in townships for g in t.grids}
    towns = {t.code: AreaTruth(t.code, t.name, "TOWNSHIP") for t in townships}
    for truth in persons:
        if truth.scope != IN_COUNTY:
            continue
        grids[truth.grid_code].add(truth)
        towns[truth.township_code].add(truth)
    resends = Counter(a.kind for a in actions if a.resend)
    return CountyTruth(
        coverage_year=coverage_year, as_of=as_of, persons=persons, townships=towns, grids=grids,
        expected_errors=list(expected_errors), expected_malformed=[m.expected_code for m in malformed],
        expected_resends={k: resends.get(k, 0) for k in timeline.KINDS},
    )


class _TableCache:
    """A policy book's ``get`` and ``regions``, memoised (the generator asks for the same few tables often)."""

    def __init__(self, book: Any) -> None:
        self.book = book
        self._tables: dict[tuple[str, int], PolicyTable] = {}

    def get(self, region_code: str, coverage_year: int) -> PolicyTable:
        key = (region_code, coverage_year)
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = self.book.get(region_code, coverage_year)
        return table

    def regions(self) -> set[str]:
        return self.book.regions()


# =========================================================================== names and places
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_MALE = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宁浩凯健俊帆帅旭宇林峰建国文志成龙海春东亮兵振家长荣"
_FEMALE = "芳娜敏静丽艳娟霞秀玲桂英华红梅琳燕萍雪倩婷慧莉兰凤洁琴云颖欣悦佳璐婧瑶晶丹蓉玉"
_HANBIN_STREETS = ("老城街道", "新城街道", "江北街道", "建民街道")
_HANBIN_TOWNS = ("关庙镇", "张滩镇", "瀛湖镇", "五里镇", "恒口镇", "吉河镇", "流水镇", "大竹园镇", "洪山镇", "茨沟镇",
                 "大河镇", "沈坝镇", "双龙镇", "叶坪镇", "中原镇", "早阳镇", "县河镇", "晏坝镇", "谭坝镇", "坝河镇",
                 "牛蹄镇", "紫荆镇", "关家镇", "石梯镇")
_STREETS = ("城关街道", "东城街道", "西城街道", "南城街道", "北城街道")
_TOWNS = ("城关镇", "涧池镇", "蒲溪镇", "平梁镇", "双乳镇", "铁佛镇", "漩涡镇", "汉阳镇", "双河镇", "观音河镇",
          "石佛寺镇", "兴隆镇", "长安镇", "老县镇", "西岔河镇", "八仙镇")
_TOWNSHIPS = ("双溪乡", "白鱼乡", "花园乡", "田坝乡", "河坪乡", "铁炉乡", "大坪乡", "新坝乡", "麻坪乡", "茅坪乡")
_VILLAGES = ("东坝", "西岔", "黄沟", "马坪", "柳林", "枫树", "双河", "石门", "中坝", "青山", "桃园", "梨树", "新庄",
             "庙坪", "白庙", "吉庆", "金星", "五星", "光明", "团结", "和平", "红花", "水田", "龙王", "天池", "松树",
             "茶园", "花园", "朝阳", "建新", "永红", "胜利", "联合", "长春", "石板", "竹园", "大湾", "小河",
             "杨家", "高峰", "龙泉", "清泉", "双桥", "三合", "四方", "瓦房", "河口", "田湾", "林场", "铁索")
_BAND_WEIGHTS = ((0, 5.0), (5, 6.0), (10, 6.0), (15, 5.5), (20, 5.0), (25, 5.5), (30, 7.5), (35, 7.0), (40, 6.5),
                 (45, 7.5), (50, 8.5), (55, 8.0), (60, 5.5), (65, 5.5), (70, 4.0), (75, 2.5), (80, 1.5), (85, 0.8),
                 (90, 0.3))
# Address codes on older ID cards: the Ankang prefecture's pre-2000 county codes (安康地区),
# and a few places people moved in from.
_OLD_ANKANG = {"610902": "612401", "610921": "612422", "610922": "612423", "610923": "612424",
               "610924": "612425", "610925": "612426", "610926": "612427", "610927": "612428",
               "610929": "612430", "610981": "612429"}
_ELSEWHERE = ("610113", "610102", "420302", "500101", "510802", "411302")
_CHANNELS = (("TAX_APP", 35), ("WECHAT", 25), ("ALIPAY", 10), ("BANK", 10), ("VILLAGE_AGENT", 15), ("TAX_HALL", 5))
_CIVIL_AFFAIRS = ("EXTREME_POVERTY", "ORPHAN", "DE_FACTO_ORPHAN", "MIN_LIVING", "LOW_INCOME_MARGINAL")


@functools.cache
def _sample_places() -> PlaceNames:
    return load_places(SAMPLE_PLACES)


def _sample_name(code: str, drawn: str) -> str:
    """The packaged places table's (sample) name of a code, so the demo's report and the web page, which
    reads that table, name a place alike; the name drawn when the table has none (codes past its lists)."""
    return _sample_places().name_on(code, date(2000, 1, 1)) or drawn


def _short(region_name: str) -> str:
    return region_name[:-1] if region_name[-1] in "区县市" else region_name


# =========================================================================== the generator
def generate_county(
    seed: int,
    people: int,
    *,
    region_code: str = "610902",
    coverage_year: int = 2025,
    start: date | None = None,
    as_of: date | None = None,
    profile: CountyProfile | None = None,
    policies: Any = None,
) -> County:
    """Generate a county of ``people`` residents (at the start; newborns and people transferred in come on top).

    ``start`` is the first day of the timeline (default 1 Sep of ``coverage_year - 2``,
    the opening of the Y-1 concentrated period), ``as_of`` the day the truth is stated
    for (default 31 Mar of ``coverage_year``). ``policies`` is the policy book the truth
    reads its numbers from (default: the shipped tables); replay on a ledger with the
    same tables. Tables must exist for ``coverage_year - 1`` and ``coverage_year`` (the
    shipped ones allow 2025 and 2026); a missing one raises ``NotFound``.
    """
    started = time.perf_counter()
    if region_code not in ANKANG_REGIONS:
        raise ValueError(f"region {region_code} is not one of Ankang's counties: {', '.join(ANKANG_REGIONS)}")
    if people < 1:
        raise ValueError("a county needs at least one person")
    builder = _Builder(seed, people, region_code, coverage_year, start, as_of, profile or CountyProfile(),
                       policies or default_policy_book())
    # The county is a large graph of acyclic objects; the cyclic collector would walk it
    # again and again as it grows (100,000 people: 19 s instead of 11 s). Pause it.
    collecting = gc.isenabled()
    gc.disable()
    try:
        county = builder.build()
    finally:
        if collecting:
            gc.enable()
    county.generation_seconds = time.perf_counter() - started
    return county


class _Builder:
    def __init__(self, seed: int, people: int, region: str, year: int, start: date | None, as_of: date | None,
                 profile: CountyProfile, policies: Any) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.people = people
        self.region = region
        self.region_name = ANKANG_REGIONS[region]
        self.year = year
        self.profile = profile
        self.policies = policies = _TableCache(policies)
        self.tY = policies.get(region, year)
        self.tY1 = policies.get(region, year - 1)
        self.start = start or date(year - 2, 9, 1)
        self.as_of = as_of or date(year, 3, 31)
        res = self.tY.resident
        self.season_start = res.concentrated_start
        self.conc_end = res.concentrated_end
        self.ext_end = res.extended_window_end or res.concentrated_end
        self.jan1 = date(year, 1, 1)
        if not (self.start + timedelta(days=30) < self.tY1.resident.concentrated_end):
            raise ValueError(f"start {self.start} leaves no time for the {year - 1} contribution season")
        if not (self.ext_end < self.as_of <= date(year, 12, 31)):
            raise ValueError(f"as_of must fall after the extended window ({self.ext_end}) and within {year}")
        self.others = [r for r in ANKANG_REGIONS if r != region]
        self.actions: list[Action] = []
        self.seq = 0
        self.counters: dict[str, int] = {}
        self.used: dict[tuple[str, date], set[int]] = {}
        self.persons: list[SimPerson] = []
        self.expected_errors: list[ExpectedError] = []
        self.malformed: list[MalformedRow] = []
        self.employers: list[Employer] = []
        self.employer_by_id: dict[str, Employer] = {}
        self.channel_names = [c for c, _ in _CHANNELS]
        self.channel_cum = []
        total = 0
        for _, w in _CHANNELS:
            total += w
            self.channel_cum.append(total)
        short = _short(self.region_name)
        self.departments = {"民政": f"{self.region_name}民政局", "振兴": f"{self.region_name}乡村振兴局"}
        self.doc_prefix = {"民政": f"{short}民发", "振兴": f"{short}振发"}

    # ------------------------------------------------------------------ small helpers
    def count(self, rate: float, *, rare: bool = False) -> int:
        n = round(rate * self.people)
        if rare and self.people >= 300:
            n = max(n, self.profile.min_each)
        return n

    def next(self, name: str) -> int:
        n = self.counters.get(name, 0) + 1
        self.counters[name] = n
        return n

    def day(self, lo: date, hi: date) -> date:
        if hi < lo:
            return lo
        return lo + timedelta(days=self.rng.randint(0, (hi - lo).days))

    def skewed_day(self, lo: date, hi: date) -> date:
        """A day in [lo, hi], crowding towards the deadline (people pay late in the period)."""
        span = (hi - lo).days
        return lo + timedelta(days=min(span, int(self.rng.triangular(0, span + 1, span * 0.85))))

    def instant(self, day: date, lo: int = 8, hi: int = 22) -> datetime:
        """A UTC instant on ``day`` between ``lo`` and ``hi`` o'clock Beijing time."""
        seconds = self.rng.randrange(lo * 3600, hi * 3600) - 8 * 3600  # Beijing is UTC+8
        return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(seconds=seconds)

    def add(self, when: datetime, kind: str, record: Any, key: str, *, error: str | None = None,
            resend: bool = False) -> Action:
        self.seq += 1
        action = Action(when, timeline.RANK[kind], self.seq, kind, record, key, error, resend)
        self.actions.append(action)
        if error is not None:
            self.expected_errors.append(ExpectedError(kind, key, error))
        return action

    def can_act(self, p: SimPerson, day: date) -> bool:
        return day <= self.as_of and (p.stop is None or day <= p.stop)

    def sample(self, pool: Sequence[SimPerson], k: int) -> list[SimPerson]:
        return self.rng.sample(list(pool), max(0, min(k, len(pool))))

    def weighted_sample(self, pool: Sequence[SimPerson], weight: Callable[[SimPerson], float], k: int) -> list[SimPerson]:
        keyed = sorted(((self.rng.random() ** (1.0 / weight(p)), p.index, p) for p in pool), reverse=True)
        return [p for _, _, p in keyed[:k]]

    # ------------------------------------------------------------------ identities
    def new_id(self, address: str, birth: date, sex: str) -> str:
        used = self.used.setdefault((address, birth), set())
        parity = 1 if sex == "M" else 0
        for _ in range(40):
            sequence = 2 * self.rng.randrange(0, 500) + parity
            if sequence and sequence not in used:
                used.add(sequence)
                return make_resident_id(address, birth, sequence)
        for sequence in range(parity or 2, 1000, 2):
            if sequence not in used:
                used.add(sequence)
                return make_resident_id(address, birth, sequence)
        raise RuntimeError(f"no free ID sequence left for {address} {birth}")

    def new_name(self, sex: str, surname: str | None = None) -> str:
        rng = self.rng
        surname = surname or _SURNAMES[min(int(rng.expovariate(1 / 18)), len(_SURNAMES) - 1)]
        chars = _MALE if sex == "M" else _FEMALE
        given = rng.choice(chars) + (rng.choice(chars) if rng.random() < 0.7 else "")
        return surname + given

    def address_for(self, birth: date, region: str) -> str:
        r = self.rng.random()
        if birth.year < 2000:
            if r < 0.25 and region in _OLD_ANKANG:
                return _OLD_ANKANG[region]
            if r > 0.93:
                return self.rng.choice(_ELSEWHERE)
        elif r > 0.97:
            return self.rng.choice(_ELSEWHERE)
        return region

    def birth_for_age(self, age: int, reference: date) -> date:
        birth = reference - timedelta(days=age * 365 + age // 4 + self.rng.randrange(365))
        return max(birth, date(1915, 1, 1))

    def new_person(self, birth: date, grid: str, *, surname: str | None = None, region: str | None = None,
                   address: str | None = None) -> SimPerson:
        sex = "M" if self.rng.random() < 0.505 else "F"
        address = address or self.address_for(birth, region or self.region)
        p = SimPerson(index=len(self.persons), id_number=self.new_id(address, birth, sex),
                      name=self.new_name(sex, surname), sex=sex, birth=birth, grid_code=grid)
        self.persons.append(p)
        return p

    def bad_id(self, id_number: str) -> str:
        right = resident_id_check_char(id_number[:17])
        wrong = self.rng.choice([c for c in "0123456789X" if c != right])
        return id_number[:17] + wrong

    def phantom(self, *, address: str | None = None) -> tuple[str, str]:
        """An ID number and name of someone who is not part of the county's population."""
        sex = "M" if self.rng.random() < 0.5 else "F"
        birth = self.birth_for_age(self.rng.randint(18, 80), self.start)
        return self.new_id(address or self.region, birth, sex), self.new_name(sex)

    # ------------------------------------------------------------------ places
    def build_places(self) -> list[Township]:
        rng, prof = self.rng, self.profile
        hanbin = self.region == "610902"
        streets = _HANBIN_STREETS if hanbin else _STREETS
        towns = _HANBIN_TOWNS if hanbin else _TOWNS
        townships = []
        plan = [("STREET", 1, prof.street_offices, streets, (3, 6)),
                ("TOWN", 100, prof.towns, towns, (4, 9)),
                ("TOWNSHIP", 200, prof.townships, _TOWNSHIPS, (3, 6))]
        for kind, first, n, names, (lo, hi) in plan:
            chosen = rng.sample(list(names), min(n, len(names)))
            while len(chosen) < n:
                chosen.append(f"第{len(chosen) + 1}{names[0][-2:]}")
            for i, name in enumerate(chosen):
                code = f"{self.region}{first + i:03d}"
                name = _sample_name(code, name)
                villages = rng.sample(list(_VILLAGES), rng.randint(lo, hi))
                grids = []
                for j, village in enumerate(villages):
                    if kind == "STREET":
                        grid = (f"{code}{j + 1:03d}", f"{village}社区")
                    elif kind == "TOWN" and j == 0:
                        grid = (f"{code}001", f"{name[:-1]}社区")
                    else:
                        grid = (f"{code}{200 + j:03d}", f"{village}村")
                    grids.append(Grid(grid[0], _sample_name(*grid), code))
                townships.append(Township(code, name, kind, tuple(grids)))
        return townships

    def other_grid(self, region: str) -> str:
        return f"{region}{100 + self.rng.randrange(6):03d}{200 + self.rng.randrange(12):03d}"

    # ------------------------------------------------------------------ feed records
    def office(self, region: str, channel: str, township: str | None = None) -> str:
        if channel in ("VILLAGE_AGENT", "TAX_HALL") and township is not None:
            return f"1{region}{1 + int(township[-3:]) % 4:02d}00"
        return f"1{region}0000"

    def voucher(self, office: str, year: int, prefix: str = "3") -> str:
        return f"{prefix}{office[1:]}{year % 100:02d}{self.next('v' + office):07d}"

    def residence(self, p: SimPerson, status: ResidenceStatus, grid: str | None, effective: date, day: date,
                  extra: dict[str, str] | None = None, *, id_number: str | None = None,
                  error: str | None = None) -> Action:
        rid = f"HJ{self.region}{self.next('hj'):09d}"
        record = ResidentRecord(rid, ID_TYPE, id_number or p.id_number, p.name, grid, status, effective, extra or {})
        return self.add(self.instant(day), RESIDENCE, record, rid, error=error)

    def document(self, category: str, day: date) -> tuple[str, str]:
        dept = "民政" if category in _CIVIL_AFFAIRS else "振兴"
        # One document lists many people: a new number every 40 records or so.
        n = self.next(f"doc-records:{dept}:{day.year}")
        return self.departments[dept], f"{self.doc_prefix[dept]}〔{day.year}〕{(n - 1) // 40 + 1}号"

    def grant(self, p: SimPerson, category: str, valid_from: date, valid_to: date | None, day: date,
              when: datetime | None = None) -> SimStatus | None:
        if not self.can_act(p, day):
            return None
        when = when or self.instant(day)
        department, document = self.document(category, day)
        rid = f"ZG{self.region}{self.next('zg'):09d}"
        record = StatusRecord(rid, ID_TYPE, p.id_number, p.name, category, True, valid_from, valid_to,
                              department, document, grant_id=rid)
        self.add(when, STATUS, record, rid)
        status = SimStatus(rid, category, valid_from, valid_to, when)
        p.statuses.append(status)
        return status

    def revoke(self, p: SimPerson, status: SimStatus, revoked_from: date, day: date) -> bool:
        if not self.can_act(p, day):
            return False
        when = self.instant(day)
        department, document = self.document(status.category, day)
        rid = f"ZG{self.region}{self.next('zg'):09d}"
        record = StatusRecord(rid, ID_TYPE, p.id_number, p.name, status.category, False, revoked_from, None,
                              department, document, grant_id=status.grant_id)
        self.add(when, STATUS, record, rid)
        status.revoked_from, status.revoked_at = revoked_from, when
        return True

    def clerk(self, region: str) -> str:
        return f"clerk-{region}-{1 + self.rng.randrange(6):02d}"

    def enroll(self, p: SimPerson, scheme: str, region: str, day: date, *, effective: date | None = None,
               channel: str = EnrollmentChannel.COUNTER, employer_id: str | None = None, flexible: bool = False,
               grid: str | None = None, when: datetime | None = None, error: str | None = None) -> SimEnrollment | None:
        if not self.can_act(p, day):
            return None
        rid = f"REQ{self.next('req'):09d}"
        effective = effective or day
        record = Enrollment(rid, self.clerk(region), ID_TYPE, p.id_number, p.name, scheme, region,
                            grid if grid is not None else p.grid_code, flexible, employer_id, str(channel), effective)
        self.add(when or self.instant(day, 8, 17), ENROLL, record, rid, error=error)
        if error is not None:
            return None
        enrollment = SimEnrollment(scheme, region, effective, flexible, employer_id, str(channel),
                                   duplicate=bool(p.open_enrollments()))
        p.enrollments.append(enrollment)
        return enrollment

    def assess(self, p: SimPerson, year: int, day: date, when: datetime | None = None) -> bool:
        if not self.can_act(p, day):
            return False
        rid = f"REQ{self.next('req'):09d}"
        region = p.open_enrollments()[0].region
        self.add(when or self.instant(day, 8, 17), ASSESS, Assessment(rid, self.clerk(region), ID_TYPE, p.id_number,
                                                                       year, day), rid)
        p.assessed.setdefault(year, day)
        return True

    def due_at(self, p: SimPerson, table: PolicyTable, when: datetime) -> tuple[int, str | None, int]:
        """(due, subsidy category, subsidy) for the table's year, with the statuses known at ``when``."""
        category, subsidy = _best_subsidy(table, _status_intervals(p.statuses, when))
        return max(0, table.resident.individual_share_fen - subsidy), category, subsidy

    def channel(self) -> str:
        return self.pick(self.channel_names, self.channel_cum)

    def pick(self, items: Sequence[Any], cum_weights: Sequence[float]) -> Any:
        """``rng.choices(items, cum_weights=...)[0]`` without its per-call overhead."""
        return items[bisect_right(cum_weights, self.rng.random() * cum_weights[-1])]

    def pay(self, p: SimPerson, *, levy: str, region: str, period_start: date, period_end: date, amount: int,
            day: date, when: datetime | None = None, channel: str | None = None, office: str | None = None,
            base: int | None = None, subsidy: tuple[str | None, int] = (None, 0)) -> SimPayment | None:
        if amount <= 0 or not self.can_act(p, day):
            return None
        channel = channel or self.channel()
        office = office or self.office(region, channel, p.grid_code[:9] if p.grid_code.startswith(region) else None)
        when = when or self.instant(day)
        voucher = self.voucher(office, day.year)
        category, subsidy_fen = subsidy
        record = TaxPaymentRecord(
            voucher_no=voucher, tax_office=office, id_type=ID_TYPE, id_number=p.id_number, name=p.name,
            region_code=region, levy_item=Scheme(levy), period_start=period_start, period_end=period_end,
            amount_fen=amount, paid_at=when, credited_on=day + timedelta(days=self.rng.randint(1, 3)),
            channel=channel, kind=PaymentKind.PAYMENT, assessed_base_fen=base,
            subsidy_fen=subsidy_fen or None, subsidy_type=category,
        )
        self.add(when, TAX, record, f"{office}|{voucher}")
        payment = SimPayment(voucher, office, levy, region, period_start, period_end, amount, when)
        p.payments.append(payment)
        if levy == Scheme.RESIDENT and not p.enrollments:
            # 先缴费后登记: the ledger enrolls a never-enrolled resident from the payment.
            p.enrollments.append(SimEnrollment(Scheme.RESIDENT, region, day, channel=EnrollmentChannel.TAX_PAYMENT))
        return payment

    def pay_resident(self, p: SimPerson, year: int, day: date, *, region: str | None = None,
                     amount: int | None = None, channel: str | None = None, after: datetime | None = None
                     ) -> SimPayment | None:
        region = region or self.region
        table = self.policies.get(region, year)
        when = self.instant(day, 12, 22) if after is None else max(self.instant(day, 12, 22), after + timedelta(minutes=5))
        due, category, subsidy = self.due_at(p, table, when)
        return self.pay(p, levy=Scheme.RESIDENT, region=region, period_start=date(year, 1, 1),
                        period_end=date(year, 12, 31), amount=due if amount is None else amount, day=day,
                        when=when, channel=channel, subsidy=(category, subsidy))

    def correction(self, p: SimPerson, payment: SimPayment, kind: PaymentKind, amount: int, day: date,
                   reason: str) -> bool:
        if not self.can_act(p, day):
            return False
        when = self.instant(day)
        if when <= payment.paid_at:
            return False
        prefix = "4" if kind == PaymentKind.REFUND else "5"
        voucher = self.voucher(payment.office, day.year, prefix)
        record = TaxPaymentRecord(
            voucher_no=voucher, tax_office=payment.office, id_type=ID_TYPE, id_number=p.id_number, name=p.name,
            region_code=payment.region, levy_item=Scheme(payment.levy), period_start=payment.period_start,
            period_end=payment.period_end, amount_fen=amount, paid_at=when,
            credited_on=day + timedelta(days=self.rng.randint(1, 3)), channel="TAX_SYSTEM", kind=kind,
            original_voucher_no=payment.voucher_no, original_tax_office=payment.office, reason=reason,
        )
        self.add(when, TAX, record, f"{payment.office}|{voucher}")
        if kind == PaymentKind.REFUND:
            payment.refunds.append((amount, when))
        else:
            payment.reversed_at = when
        return True

    # ------------------------------------------------------------------ build
    def build(self) -> County:
        townships = self.build_places()
        self.populate(townships)
        self.assign_schemes()
        self.assign_statuses()
        self.assign_behaviours()
        self.assign_life_events(townships)
        self.assign_scenarios()
        self.build_employers()
        natives = list(self.persons)
        self.emit_migration(natives)
        self.plan_status_changes(natives)
        for p in natives:
            if p.plan == EMPLOYEE:
                self.emit_employee(p)
            elif p.plan == FLEXIBLE:
                self.emit_flexible(p)
            else:
                self.emit_resident(p)
        self.settle_status_changes()
        self.emit_scenarios(natives)
        self.emit_newborns(natives)
        self.emit_transfers_in(natives)
        self.emit_life_events(natives)
        self.emit_bad_records(natives)
        self.emit_resends()
        self.build_malformed()
        self.actions.sort(key=lambda a: (a.when, a.rank, a.seq))
        truth = compute_truth(self.persons, townships, coverage_year=self.year, as_of=self.as_of,
                              region_code=self.region, policies=self.policies, expected_errors=self.expected_errors,
                              malformed=self.malformed, actions=self.actions)
        statements, injected, truth.expected_discrepancies = build_statements(self.actions, self.seed)
        return County(
            seed=self.seed, region_code=self.region, region_name=self.region_name, coverage_year=self.year,
            start=self.start, as_of=self.as_of, profile=self.profile, townships=townships,
            employers=self.employers, persons=self.persons, actions=self.actions,
            malformed_rows=self.malformed, truth=truth, statements=statements, statement_injections=injected,
        )

    def populate(self, townships: list[Township]) -> None:
        rng = self.rng
        grids, cum, total = [], [], 0.0
        weight = {"STREET": 3.0, "TOWN": 1.5, "TOWNSHIP": 1.0}
        for t in townships:
            for g in t.grids:
                total += weight[t.kind] * rng.uniform(0.6, 1.4)
                grids.append(g.code)
                cum.append(total)
        bands = [lo for lo, _ in _BAND_WEIGHTS]
        band_cum, acc = [], 0.0
        for _, w in _BAND_WEIGHTS:
            acc += w
            band_cum.append(acc)
        sizes, size_cum = (1, 2, 3, 4, 5, 6), (15, 43, 65, 83, 93, 100)
        while len(self.persons) < self.people:
            grid = self.pick(grids, cum)
            surname = _SURNAMES[min(int(rng.expovariate(1 / 18)), len(_SURNAMES) - 1)]
            for _ in range(min(self.pick(sizes, size_cum), self.people - len(self.persons))):
                age = self.pick(bands, band_cum) + rng.randrange(5)
                birth = self.birth_for_age(age, self.start)
                self.new_person(birth, grid, surname=surname if rng.random() < 0.8 else None)

    def age(self, p: SimPerson, on: date | None = None) -> int:
        on = on or self.jan1
        return on.year - p.birth.year - ((on.month, on.day) < (p.birth.month, p.birth.day))

    def assign_schemes(self) -> None:
        working = [p for p in self.persons if 18 <= self.age(p, self.start) and self.age(p) <= 59]
        employees = self.sample(working, self.count(self.profile.employee_rate))
        for p in employees:
            p.plan = EMPLOYEE
        rest = [p for p in working if p.plan == RESIDENT]
        for p in self.sample(rest, self.count(self.profile.flexible_rate)):
            p.plan = FLEXIBLE

    def assign_statuses(self) -> None:
        """Subsidised statuses in force at the start (given at the start of the timeline)."""
        residents = [p for p in self.persons if p.plan == RESIDENT]
        held: dict[int, list[str]] = {}
        order = ("ORPHAN", "DE_FACTO_ORPHAN", "EXTREME_POVERTY", "MIN_LIVING", "RELAPSED_POVERTY",
                 "LOW_INCOME_MARGINAL", "MONITORED")
        for category in order:
            rate = self.profile.subsidy_rates.get(category, 0.0)
            if category in ("ORPHAN", "DE_FACTO_ORPHAN"):
                pool = [p for p in residents if p.index not in held and self.age(p, self.start) < 16]
            elif category == "EXTREME_POVERTY":
                pool = [p for p in residents if p.index not in held and self.age(p, self.start) >= 16]
            elif category == "MONITORED":
                # Monitored people: some also hold the minimum living allowance (two statuses).
                pool = [p for p in residents if p.index not in held or held[p.index] == ["MIN_LIVING"]]
            else:
                pool = [p for p in residents if p.index not in held]
            chosen = self.weighted_sample(pool, lambda p: 1.0 if p.index not in held else 0.15, self.count(rate)) \
                if category == "MONITORED" else self.sample(pool, self.count(rate))
            for p in chosen:
                held.setdefault(p.index, []).append(category)
        self.initial_statuses = held

    def assign_behaviours(self) -> None:
        prof, rng = self.profile, self.rng
        residents = [p for p in self.persons if p.plan == RESIDENT]
        full = {"EXTREME_POVERTY", "ORPHAN", "DE_FACTO_ORPHAN"}
        base: list[SimPerson] = []
        fixed_holders: list[SimPerson] = []
        for p in residents:
            cats = self.initial_statuses.get(p.index, [])
            if any(c in full for c in cats):
                p.behaviour, p.history = SUBSIDY_ONLY, COVERED
            elif cats:
                p.behaviour, p.history = ON_TIME, COVERED
                fixed_holders.append(p)
            else:
                base.append(p)
        for p in self.sample(fixed_holders, max(round(prof.subsidised_non_payer_rate * len(fixed_holders)),
                                                prof.min_each if self.people >= 300 else 0)):
            p.behaviour = NON_PAYER
        shuffled = self.sample(base, len(base))
        n = len(base)
        cuts = [(ON_TIME, prof.on_time_rate), (LATE, prof.late_rate), (BACK_PAY, prof.back_pay_rate),
                (UNDERPAY, prof.underpay_rate)]
        i = 0
        for behaviour, rate in cuts:
            k = round(rate * n)
            for p in shuffled[i:i + k]:
                p.behaviour = behaviour
            i += k
        for p in shuffled[i:]:
            p.behaviour = NON_PAYER
        history = {ON_TIME: ((COVERED, 96), (GAP, 2), (NEVER, 2)), LATE: ((COVERED, 75), (GAP, 15), (NEVER, 10)),
                   BACK_PAY: ((GAP, 1),), UNDERPAY: ((COVERED, 1),),
                   NON_PAYER: ((COVERED, 45), (GAP, 25), (NEVER, 30))}
        for p in base:
            options = history[p.behaviour]  # type: ignore[index]
            p.history = rng.choices([h for h, _ in options], weights=[w for _, w in options])[0]
        for p in residents:
            p.since = self.day(max(date(2016, 1, 1), p.birth + timedelta(days=30)), self.start - timedelta(days=30))

    def assign_life_events(self, townships: list[Township]) -> None:
        prof = self.profile
        lo = self.season_start + timedelta(days=10)

        def mortality(p: SimPerson) -> float:
            age = self.age(p)
            return 1.0 if age < 50 else 3.0 if age < 65 else 10.0 if age < 80 else 30.0

        for p in self.weighted_sample(self.persons, mortality, self.count(prof.death_rate)):
            p.died_on = self.day(lo, self.as_of - timedelta(days=11))
            p.tags.append("DIED")
        alive = [p for p in self.persons if p.died_on is None]
        for p in self.sample(alive, self.count(prof.move_out_rate)):
            p.moved_out_on = self.day(lo, self.as_of - timedelta(days=6))
            p.tags.append("MOVED_OUT")
        grids = [g.code for t in townships for g in t.grids]
        staying = [p for p in self.persons if p.stop is None]
        self.grid_moves = [(p, self.day(lo, self.as_of - timedelta(days=3)), self.rng.choice(grids))
                           for p in self.sample(staying, self.count(prof.move_within_rate))]

    def assign_scenarios(self) -> None:
        """Special cases, each on people with no other special role: transfers, duplicates, corrections."""
        prof = self.profile

        def pool(adult: bool = False) -> list[SimPerson]:
            return [p for p in self.persons if p.plan == RESIDENT and p.behaviour == ON_TIME and p.history == COVERED
                    and not p.tags and p.index not in self.initial_statuses
                    and (not adult or 18 <= self.age(p) <= 55)]

        quarter = self.count(prof.transfer_rate / 4, rare=True)
        for tag in ("TRANSFER_OUT_DONE", "TRANSFER_OUT_PENDING"):
            for p in self.sample(pool(), quarter):
                p.tags.append(tag)
        self.transfers_in = {"TRANSFER_IN_DONE": quarter, "TRANSFER_IN_PENDING": quarter}
        half = self.count(prof.duplicate_rate / 2, rare=True)
        for p in self.sample(pool(adult=True), half):
            p.tags.append("DUPLICATE_EMPLOYEE")
        for p in self.sample(pool(), half):
            p.tags.append("DUPLICATE_REGION")
        for p in self.sample(pool(), self.count(prof.bad_record_rate / 4, rare=True)):
            p.tags.append("COUNTER_DOUBLE_ENTRY")
        payers = [p for p in self.persons if p.plan == RESIDENT and p.behaviour == ON_TIME and not p.tags]
        for p in self.sample(payers, round(prof.double_payment_rate * len(payers))):
            p.tags.append("DOUBLE_PAYMENT")
        payers = [p for p in payers if not p.tags]
        for p in self.sample(payers, round(prof.reversal_rate * len(payers))):
            p.tags.append("REVERSED")

    def build_employers(self) -> None:
        rng = self.rng
        employees = [p for p in self.persons if p.plan == EMPLOYEE]
        n = max(1, len(employees) // 12)
        letters = "0123456789ABCDEFGHJKLMNPQRTUWXY"
        for _ in range(n):
            code = "91" + self.region + "".join(rng.choice(letters) for _ in range(10))
            arrears = rng.choice((1, 2)) if rng.random() < self.profile.employer_arrears_rate else None
            employer = Employer(code, rng.randint(8, 25), arrears)
            self.employers.append(employer)
            self.employer_by_id[code] = employer
        cum, total = [], 0.0
        for _ in self.employers:
            total += rng.paretovariate(1.2)
            cum.append(total)
        for p in employees:
            p.employer_id = self.pick(self.employers, cum).employer_id
            p.base_fen = int(rng.triangular(2_500, 16_000, 4_500)) * 100
            earliest = max(date(2005, 1, 1), p.birth.replace(year=p.birth.year + 18) if not (
                p.birth.month == 2 and p.birth.day == 29) else date(p.birth.year + 18, 3, 1))
            p.since = self.day(earliest, self.start - timedelta(days=1))
        for p in self.persons:
            if p.plan == FLEXIBLE:
                p.since = self.day(date(2015, 1, 1), self.start - timedelta(days=1))

    # ------------------------------------------------------------------ emission
    def emit_migration(self, natives: list[SimPerson]) -> None:
        """The registry snapshot, the statuses in force, and the batch import of existing members."""
        snapshot = self.start
        for p in natives:
            self.residence(p, ResidenceStatus.RESIDENT, p.grid_code, snapshot, snapshot, {"source": "snapshot"})
        for p in natives:
            for category in self.initial_statuses.get(p.index, []):
                valid_from = self.day(date(2019, 1, 1), self.start - timedelta(days=30))
                valid_to = None
                if category in ("ORPHAN", "DE_FACTO_ORPHAN"):
                    valid_to = date(p.birth.year + 18, p.birth.month, 1) - timedelta(days=1)
                self.grant(p, category, valid_from, valid_to, snapshot + timedelta(days=1))
        migration = snapshot + timedelta(days=2)
        for p in natives:
            if p.plan == EMPLOYEE:
                self.enroll(p, Scheme.EMPLOYEE, self.region, migration, effective=p.since,
                            employer_id=p.employer_id, channel=EnrollmentChannel.COUNTER)
            elif p.plan == FLEXIBLE:
                self.enroll(p, Scheme.EMPLOYEE, self.region, migration, effective=p.since, flexible=True,
                            channel=EnrollmentChannel.COUNTER)
            elif p.history in (COVERED, GAP):
                self.enroll(p, Scheme.RESIDENT, self.region, migration, effective=p.since,
                            channel=EnrollmentChannel.BATCH_IMPORT)
                self.assess(p, self.year - 1, snapshot + timedelta(days=3))

    def y1_history(self, p: SimPerson, region: str) -> None:
        """Y-1 payment of a member covered in Y-1 (within the Y-1 concentrated period)."""
        t1 = self.policies.get(region, self.year - 1).resident
        lo = max(self.start + timedelta(days=4), t1.concentrated_start)
        self.pay_resident(p, self.year - 1, self.skewed_day(lo, t1.concentrated_end), region=region)

    def emit_resident(self, p: SimPerson) -> None:
        rng = self.rng
        if p.history == COVERED:
            self.y1_history(p, self.region)
        if p.history in (COVERED, GAP):
            self.assess(p, self.year, self.season_start, when=self.instant(self.season_start, 8, 9))
        b = p.behaviour
        if b in (ON_TIME, UNDERPAY):
            day = self.skewed_day(self.season_start + timedelta(days=1), self.conc_end)
        elif b == LATE:
            day = self.day(self.jan1, self.ext_end) if rng.random() < 0.75 else \
                self.day(self.ext_end + timedelta(days=1), self.as_of - timedelta(days=3))
        elif b == BACK_PAY:
            day = self.day(self.jan1 + timedelta(days=1), self.as_of - timedelta(days=3))
        else:
            return
        after = None
        if p.history == NEVER:
            if rng.random() < 0.4:  # registers at the counter first, then pays
                when = self.instant(day, 8, 11)
                if self.enroll(p, Scheme.RESIDENT, self.region, day, when=when) is None:
                    return
                self.assess(p, self.year, day, when=when + timedelta(minutes=20))
                after = when + timedelta(minutes=30)
        if b == BACK_PAY:
            back = self.pay_resident(p, self.year - 1, day, after=after)
            after = back.paid_at if back else after
        amount = None
        if b == UNDERPAY:
            due, _, _ = self.due_at(p, self.tY, self.instant(day))
            amount = max(100, due - rng.choice((2_000, 5_000, 10_000)))
        payment = self.pay_resident(p, self.year, day, amount=amount, after=after)
        if payment is None:
            return
        if p.history == NEVER and after is None:  # enrolled by the payment: the agency assesses the next day
            self.assess(p, self.year, day + timedelta(days=1))
        if b == UNDERPAY and rng.random() < 0.5:
            due, _, _ = self.due_at(p, self.tY, payment.paid_at)
            top_up = self.day(day + timedelta(days=10), day + timedelta(days=60))
            if self.pay_resident(p, self.year, top_up, amount=due - payment.amount_fen) is not None:
                p.tags.append("TOPPED_UP")
        if "DOUBLE_PAYMENT" in p.tags:
            second = self.pay_resident(p, self.year, self.day(day, day + timedelta(days=3)), after=payment.paid_at,
                                       amount=payment.amount_fen)
            if second is not None and rng.random() < 0.8:
                self.correction(p, second, PaymentKind.REFUND, second.amount_fen,
                                self.day(second.paid_on + timedelta(days=10), second.paid_on + timedelta(days=40)),
                                "重复缴费退费")
        if "REVERSED" in p.tags:
            reversal_day = payment.paid_on + timedelta(days=rng.randint(1, 3))
            if self.correction(p, payment, PaymentKind.REVERSAL, payment.amount_fen, reversal_day, "银行扣款失败冲正") \
                    and rng.random() < 0.7:
                self.pay_resident(p, self.year, reversal_day + timedelta(days=rng.randint(1, 10)))
                p.tags.append("REPAID")

    def emit_employee(self, p: SimPerson) -> None:
        employer = self.employer_by_id[p.employer_id]  # type: ignore[index]
        table = self.tY
        base, monthly = _employee_monthly_fen(table, p.base_fen or 0)
        for month in range(1, self.as_of.month + 1):
            if employer.arrears_from is not None and month >= employer.arrears_from:
                break
            day = date(self.year, month, min(employer.pay_day, calendar.monthrange(self.year, month)[1]))
            self.pay(p, levy=Scheme.EMPLOYEE, region=self.region, period_start=date(self.year, month, 1),
                     period_end=date(self.year, month, calendar.monthrange(self.year, month)[1]), amount=monthly,
                     day=day, when=self.instant(day, 9, 17), channel="EMPLOYER", office=f"1{self.region}0000",
                     base=base)

    def emit_flexible(self, p: SimPerson) -> None:
        rng = self.rng
        table_y1 = self.tY1
        floor = (2 * table_y1.employee.average_monthly_wage_fen * table_y1.employee.base_floor_percent + 100) // 200
        p.base_fen = floor
        y1 = self.year - 1
        base, monthly = _employee_monthly_fen(table_y1, floor)
        self.pay(p, levy=Scheme.EMPLOYEE, region=self.region, period_start=date(y1, 10, 1), period_end=date(y1, 12, 31),
                 amount=3 * monthly, day=self.day(date(y1, 10, 1), date(y1, 12, 31)), base=base)
        if rng.random() < 0.88:
            base, monthly = _employee_monthly_fen(self.tY, floor)
            self.pay(p, levy=Scheme.EMPLOYEE, region=self.region, period_start=date(self.year, 1, 1),
                     period_end=date(self.year, 3, 31), amount=3 * monthly,
                     day=self.day(self.jan1 + timedelta(days=1), date(self.year, 1, 31)), base=base)
        else:
            p.tags.append("FLEXIBLE_LAPSED")

    def plan_status_changes(self, natives: list[SimPerson]) -> None:
        """Grants and revocations during the season, decided before anyone pays so amounts follow what is known."""
        rng, prof = self.rng, self.profile
        lo = self.season_start + timedelta(days=14)
        self.status_changes: list[tuple[SimPerson, SimStatus, str]] = []
        holders = [p for p in natives if p.statuses and p.stop is None and not p.tags]
        for p in self.sample(holders, self.count(prof.status_revocation_rate)):
            status = p.statuses[0]
            if rng.random() < 0.5:  # revoked before Y: no longer counts for Y
                revoked_from = self.day(lo, self.conc_end - timedelta(days=10))
            else:  # revoked during Y: still counts for Y (any day of the year)
                revoked_from = self.day(self.jan1 + timedelta(days=4), self.as_of - timedelta(days=20))
            arrival = revoked_from + timedelta(days=rng.randint(0, 10))
            if self.revoke(p, status, revoked_from, arrival):
                p.tags.append("REVOKED")
                self.status_changes.append((p, status, "REVOKE"))
        candidates = [p for p in natives if p.plan == RESIDENT and not p.statuses and p.stop is None
                      and not p.tags and self.age(p) >= 16]
        weights = (("MIN_LIVING", 50), ("MONITORED", 20), ("LOW_INCOME_MARGINAL", 15), ("EXTREME_POVERTY", 15))
        n = self.count(prof.status_new_grant_rate)
        # Some never-enrolled people receive a status: the SUBSIDISED_NOT_COVERED case when nobody enrolls them.
        never = [p for p in candidates if p.history == NEVER and p.behaviour == NON_PAYER]
        chosen = self.sample(never, max(prof.min_each if self.people >= 300 else 0, n // 4))
        taken = {p.index for p in chosen}
        chosen += self.sample([p for p in candidates if p.index not in taken], max(0, n - len(chosen)))
        for p in chosen:
            category = rng.choices([c for c, _ in weights], weights=[w for _, w in weights])[0]
            decided = self.day(lo, self.as_of - timedelta(days=25))
            status = self.grant(p, category, decided, None, decided + timedelta(days=rng.randint(0, 7)))
            if status is not None:
                p.tags.append("NEW_GRANT")
                self.status_changes.append((p, status, "GRANT"))

    def settle_status_changes(self) -> None:
        """What the season's status changes did to money already paid, and to people never enrolled."""
        rng = self.rng
        for p, status, kind in self.status_changes:
            if kind == "GRANT" and not p.enrollments:
                if rng.random() < 0.6:  # the agency enrolls the newly certified person
                    day = status.granted_at.astimezone(BEIJING).date() + timedelta(days=rng.randint(3, 15))
                    if self.enroll(p, Scheme.RESIDENT, self.region, day) is not None:
                        self.assess(p, self.year, day + timedelta(days=1))
                        if rng.random() < 0.7:
                            self.pay_resident(p, self.year, day + timedelta(days=rng.randint(2, 6)))
                else:
                    p.tags.append("GRANTED_NOT_ENROLLED")
                continue
            self.settle(p, status.revoked_at if kind == "REVOKE" else status.granted_at)  # type: ignore[arg-type]

    def settle(self, p: SimPerson, changed_at: datetime) -> None:
        """After a status change: refund an overpayment (half the time), or top up a shortfall (60%)."""
        payments = [x for x in p.payments if x.levy == Scheme.RESIDENT and x.period_start.year == self.year
                    and x.paid_at < changed_at]
        if not p.open_enrollments() or p.open_enrollments()[0].scheme != Scheme.RESIDENT:
            return
        if not payments and p.behaviour != SUBSIDY_ONLY:
            return  # has not paid yet: will pay what is due when the time comes
        net = sum(x.net_fen for x in payments)
        due_before, _, _ = self.due_at(p, self.tY, changed_at - timedelta(seconds=1))
        due_after, _, _ = self.due_at(p, self.tY, changed_at)
        day = changed_at.astimezone(BEIJING).date()
        if due_after > due_before and due_before <= net < due_after and self.rng.random() < 0.6:
            if self.pay_resident(p, self.year, self.day(day + timedelta(days=5), day + timedelta(days=30)),
                                 amount=due_after - net) is not None:
                p.tags.append("TOPPED_UP")
        elif due_after < due_before and net > due_after and self.rng.random() < 0.5:
            largest = max(payments, key=lambda x: x.net_fen)
            amount = min(net - due_after, largest.net_fen)
            if amount > 0 and self.correction(
                    p, largest, PaymentKind.REFUND, amount,
                    self.day(day + timedelta(days=10), day + timedelta(days=40)), "资助参保退还个人缴费"):
                p.tags.append("OVERPAYMENT_REFUNDED")

    def emit_scenarios(self, natives: list[SimPerson]) -> None:
        rng = self.rng
        for p in natives:
            tags = p.tags
            if not any(t in tags for t in ("TRANSFER_OUT_DONE", "TRANSFER_OUT_PENDING", "DUPLICATE_EMPLOYEE",
                                             "DUPLICATE_REGION", "COUNTER_DOUBLE_ENTRY")):
                continue
            paid = [x.paid_on for x in p.payments if x.period_start.year == self.year]
            after = max(paid, default=self.season_start) + timedelta(days=1)
            if "TRANSFER_OUT_DONE" in tags or "TRANSFER_OUT_PENDING" in tags:
                done = "TRANSFER_OUT_DONE" in tags
                latest = self.as_of - timedelta(days=12 if done else 31)
                out_day = self.day(max(after, self.jan1 + timedelta(days=4)), latest)
                target = rng.choice(self.others)
                self.transfer(p, self.region, target, out_day, done, grid=self.other_grid(target))
            elif "DUPLICATE_EMPLOYEE" in tags:
                day = self.day(max(after, self.jan1 + timedelta(days=4)), self.as_of - timedelta(days=5))
                employer = rng.choice(self.employers) if self.employers else None
                self.enroll(p, Scheme.EMPLOYEE, self.region, day,
                            employer_id=employer.employer_id if employer else f"91{self.region}MA0000001X")
            elif "DUPLICATE_REGION" in tags:
                day = self.day(max(after, self.jan1 + timedelta(days=4)), self.as_of - timedelta(days=5))
                other = rng.choice(self.others)
                # refused since cross-region enrollment needs the transfer procedure (转移接续)
                self.enroll(p, Scheme.RESIDENT, other, day, grid=self.other_grid(other), error="ENROLLED_ELSEWHERE")
            elif "COUNTER_DOUBLE_ENTRY" in tags:
                day = self.day(self.season_start + timedelta(days=5), self.as_of - timedelta(days=5))
                self.enroll(p, Scheme.RESIDENT, self.region, day, error="ALREADY_ENROLLED")

    def transfer(self, p: SimPerson, from_region: str, to_region: str, out_day: date, complete: bool,
                 grid: str) -> None:
        rng = self.rng
        tid = f"ZY{from_region}{self.year}{self.next('zy'):06d}"
        rid = f"REQ{self.next('req'):09d}"
        when = self.instant(out_day, 9, 17)
        self.add(when, TRANSFER_OUT, TransferOut(rid, self.clerk(from_region), ID_TYPE, p.id_number, tid,
                                                 from_region, to_region, out_day), rid)
        current = next(e for e in p.open_enrollments() if not e.duplicate)
        current.end, current.end_reason = out_day, "TRANSFERRED_OUT"
        transfer = SimTransfer(tid, from_region, to_region, out_day)
        p.transfers.append(transfer)
        p.tags.append("TRANSFERRED")
        if complete:
            in_day = out_day + timedelta(days=rng.randint(3, 10))
            rid = f"REQ{self.next('req'):09d}"
            self.add(self.instant(in_day, 9, 17), TRANSFER_IN,
                     TransferIn(rid, self.clerk(to_region), ID_TYPE, p.id_number, p.name, tid, from_region,
                                to_region, grid, Scheme.RESIDENT.value, in_day), rid)
            p.enrollments.append(SimEnrollment(Scheme.RESIDENT, to_region, in_day,
                                               channel=EnrollmentChannel.TRANSFER_IN))
            transfer.in_on = in_day

    def emit_newborns(self, natives: list[SimPerson]) -> None:
        rng = self.rng
        parents = [p for p in natives if 20 <= self.age(p) <= 40 and p.stop is None]
        latest = self.as_of - timedelta(days=15)
        for _ in range(self.count(self.profile.newborn_rate)):
            parent = rng.choice(parents) if parents else rng.choice(natives)
            born = self.day(self.jan1, latest)
            child = self.new_person(born, parent.grid_code, surname=parent.name[0], address=self.region)
            child.behaviour, child.history = NEWBORN, NEVER
            child.tags.append("NEWBORN")
            registered = born + timedelta(days=rng.randint(3, 15))
            self.residence(child, ResidenceStatus.RESIDENT, child.grid_code, born, registered, {"source": "birth"})
            if rng.random() < 0.85:
                day = born + timedelta(days=rng.randint(5, 60))
                when = self.instant(day, 9, 12) if day <= self.as_of else None
                if when is None or self.enroll(child, Scheme.RESIDENT, self.region, day, effective=born,
                                               channel=EnrollmentChannel.NEWBORN, when=when) is None:
                    continue
                self.assess(child, self.year, day, when=when + timedelta(minutes=15))
                self.pay_resident(child, self.year, day + timedelta(days=rng.randint(0, 5)),
                                  after=when + timedelta(minutes=30))

    def emit_transfers_in(self, natives: list[SimPerson]) -> None:
        """People from another Ankang county: their history there, the transfer, their registry record here."""
        rng = self.rng
        grids = list(dict.fromkeys(p.grid_code for p in natives))
        for tag, n in self.transfers_in.items():
            for _ in range(n):
                origin = rng.choice(self.others)
                birth = self.birth_for_age(rng.randint(20, 55), self.start)
                p = self.new_person(birth, rng.choice(grids), region=origin)
                p.behaviour, p.history, p.origin_region = TRANSFERRED_IN, COVERED, origin
                p.tags.append(tag)
                p.since = self.day(date(2016, 1, 1), self.start - timedelta(days=30))
                origin_grid = self.other_grid(origin)
                self.enroll(p, Scheme.RESIDENT, origin, self.start + timedelta(days=2), effective=p.since,
                            channel=EnrollmentChannel.BATCH_IMPORT, grid=origin_grid)
                self.assess(p, self.year - 1, self.start + timedelta(days=3))
                self.y1_history(p, origin)
                self.assess(p, self.year, self.season_start, when=self.instant(self.season_start, 8, 9))
                pay_day = self.skewed_day(self.season_start + timedelta(days=1), self.conc_end)
                self.pay_resident(p, self.year, pay_day, region=origin)
                complete = tag == "TRANSFER_IN_DONE"
                out_day = self.day(self.jan1 + timedelta(days=4), self.as_of - timedelta(days=12 if complete else 31))
                self.transfer(p, origin, self.region, out_day, complete, grid=p.grid_code)
                self.residence(p, ResidenceStatus.RESIDENT, p.grid_code, out_day,
                               out_day + timedelta(days=rng.randint(0, 5)), {"source": "moved_in", "from": origin})

    def emit_life_events(self, natives: list[SimPerson]) -> None:
        rng = self.rng
        for p in natives:
            if p.died_on is not None:
                self.residence(p, ResidenceStatus.DECEASED, None, p.died_on,
                               p.died_on + timedelta(days=rng.randint(1, 10)), {"source": "death"})
                for e in p.open_enrollments():
                    e.end, e.end_reason = max(p.died_on, e.start), "DIED"
            elif p.moved_out_on is not None:
                destination = rng.choice(("西安市", "十堰市", "重庆市", "广州市", "深圳市", "宁波市"))
                self.residence(p, ResidenceStatus.MOVED_OUT, None, p.moved_out_on,
                               p.moved_out_on + timedelta(days=rng.randint(0, 5)),
                               {"source": "moved_out", "to": destination})
        for p, day, grid in self.grid_moves:
            if self.can_act(p, day) and grid != p.grid_code:
                self.residence(p, ResidenceStatus.RESIDENT, grid, day, day, {"source": "moved_within"})
                p.grid_code = grid

    def emit_bad_records(self, natives: list[SimPerson]) -> None:
        """Records the ledger must refuse (and keep for reconciliation), never drop silently."""
        n = self.count(self.profile.bad_record_rate / 4, rare=True)
        lo, hi = self.season_start + timedelta(days=2), self.as_of - timedelta(days=1)
        # Payments with a mistyped ID number (check digit).
        for _ in range(n):
            id_number, name = self.phantom()
            ghost = SimPerson(-1, self.bad_id(id_number), name, "M", date(1980, 1, 1), "")
            day = self.day(lo, hi)
            self._bad_payment(ghost, self.region, day, "ID_CHECKSUM")
        # Payments for a region the ledger does not serve, from people it has never seen.
        for _ in range(n):
            id_number, name = self.phantom(address="110105")
            ghost = SimPerson(-1, id_number, name, "M", date(1980, 1, 1), "")
            self._bad_payment(ghost, "110105", self.day(lo, hi), "REGION_UNKNOWN")
        tax_actions = {a.key: a for a in self.actions if a.kind == TAX}
        payers = [(p, x) for p in natives for x in p.payments
                  if x.levy == Scheme.RESIDENT and x.period_start.year == self.year and x.paid_on < hi]
        # Refunds that name a voucher the person never paid with.
        for p, x in self.rng.sample(payers, min(n, len(payers))):
            day = self.day(x.paid_on + timedelta(days=1), self.as_of)
            when = self.instant(day)
            voucher = self.voucher(x.office, day.year, "4")
            record = TaxPaymentRecord(
                voucher_no=voucher, tax_office=x.office, id_type=ID_TYPE, id_number=p.id_number, name=p.name,
                region_code=x.region, levy_item=Scheme.RESIDENT, period_start=x.period_start,
                period_end=x.period_end, amount_fen=x.amount_fen, paid_at=when, credited_on=day,
                channel="TAX_SYSTEM", kind=PaymentKind.REFUND,
                original_voucher_no=f"9{x.voucher_no[1:]}", original_tax_office=x.office, reason="退费",
            )
            self.add(when, TAX, record, f"{x.office}|{voucher}", error="REFUND_UNKNOWN_VOUCHER")
        # The same voucher sent again with another amount (a corrected row): a conflict.
        for p, x in self.rng.sample(payers, min(n, len(payers))):
            original = tax_actions[f"{x.office}|{x.voucher_no}"]
            changed = TaxPaymentRecord(**{**original.record.__dict__, "amount_fen": x.amount_fen + 100})
            day = self.day(x.paid_on + timedelta(days=1), self.as_of)
            self.add(self.instant(day), TAX, changed, original.key, error="VOUCHER_CONFLICT")
        # Registry and status rows with a mistyped ID number; revocations of a grant never made.
        for _ in range(max(1, n // 2)):
            id_number, name = self.phantom()
            ghost = SimPerson(-1, id_number, name, "F", date(1980, 1, 1), natives[0].grid_code)
            self.residence(ghost, ResidenceStatus.RESIDENT, ghost.grid_code, self.day(lo, hi), self.day(lo, hi),
                           id_number=self.bad_id(id_number), error="ID_CHECKSUM")
            id_number, name = self.phantom()
            day = self.day(lo, hi)
            department, document = self.document("MIN_LIVING", day)
            rid = f"ZG{self.region}{self.next('zg'):09d}"
            self.add(self.instant(day), STATUS,
                     StatusRecord(rid, ID_TYPE, self.bad_id(id_number), name, "MIN_LIVING", True, day, None,
                                  department, document, grant_id=rid), rid, error="ID_CHECKSUM")
        holders = [p for p in natives if p.statuses and p.stop is None]
        for p in self.rng.sample(holders, min(max(1, n // 2), len(holders))):
            day = self.day(lo, hi)
            department, document = self.document(p.statuses[0].category, day)
            rid = f"ZG{self.region}{self.next('zg'):09d}"
            self.add(self.instant(day), STATUS,
                     StatusRecord(rid, ID_TYPE, p.id_number, p.name, p.statuses[0].category, False, day, None,
                                  department, document, grant_id=f"ZG{self.region}999{rid[-6:]}"),
                     rid, error="GRANT_UNKNOWN")

    def _bad_payment(self, ghost: SimPerson, region: str, day: date, error: str) -> None:
        channel = self.channel()
        office = self.office(self.region, channel)
        when = self.instant(day)
        voucher = self.voucher(office, day.year)
        record = TaxPaymentRecord(
            voucher_no=voucher, tax_office=office, id_type=ID_TYPE, id_number=ghost.id_number, name=ghost.name,
            region_code=region, levy_item=Scheme.RESIDENT, period_start=self.jan1, period_end=date(self.year, 12, 31),
            amount_fen=self.tY.resident.individual_share_fen, paid_at=when, credited_on=day + timedelta(days=1),
            channel=channel, kind=PaymentKind.PAYMENT,
        )
        self.add(when, TAX, record, f"{office}|{voucher}", error=error)

    def emit_resends(self) -> None:
        """Exact duplicates of good records, an hour to three days after the original (the feed resends)."""
        rng, rate = self.rng, self.profile.resend_rate
        limit = datetime(self.as_of.year, self.as_of.month, self.as_of.day, 14, tzinfo=timezone.utc)
        for action in list(self.actions):
            if action.expected_error is not None:
                continue
            chance = rate if action.kind == TAX else rate / 2 if action.kind in (STATUS, RESIDENCE) else 0.0
            if chance and rng.random() < chance:
                when = action.when + timedelta(seconds=rng.randint(3600, 3 * 86400))
                if when < limit:
                    self.add(when, action.kind, action.record, action.key, resend=True)

    def build_malformed(self) -> None:
        rng = self.rng
        good = {kind: [a.record for a in self.actions if a.kind == kind and a.expected_error is None]
                for kind in (TAX, STATUS, RESIDENCE)}
        corruptions: list[tuple[str, str, str, Callable[[dict[str, Any]], None], str]] = [
            (TAX, timeline.TAX_TOPIC, "voucher number missing", lambda r: r.update(voucher_no=None), "FIELD_MISSING"),
            (TAX, timeline.TAX_TOPIC, "amount as text with decimals", lambda r: r.update(amount_fen="400.00"),
             "FIELD_INVALID"),
            (TAX, timeline.TAX_TOPIC, "levy item unknown to this reader", lambda r: r.update(levy_item="UNKNOWN"),
             "LEVY_ITEM_UNKNOWN"),
            (TAX, timeline.TAX_TOPIC, "record kind unknown to this reader", lambda r: r.update(kind="UNKNOWN"),
             "PAYMENT_KIND_UNKNOWN"),
            (TAX, timeline.TAX_TOPIC, "payment time without time zone",
             lambda r: r.update(paid_at=r["paid_at"].replace(tzinfo=None)), "FIELD_INVALID"),
            (STATUS, timeline.STATUS_TOPIC, "status action unknown to this reader", lambda r: r.update(action="UNKNOWN"),
             "STATUS_ACTION_UNKNOWN"),
            (STATUS, timeline.STATUS_TOPIC, "category unknown to this reader", lambda r: r.update(category="UNKNOWN"),
             "SUBSIDY_CATEGORY_UNKNOWN"),
            (STATUS, timeline.STATUS_TOPIC, "valid-from date as text",
             lambda r: r.update(valid_from=r["valid_from"].strftime("%Y/%m/%d")), "FIELD_INVALID"),
            (RESIDENCE, timeline.RESIDENTS_TOPIC, "grid code of 11 digits",
             lambda r: r.update(grid_code=(r["grid_code"] or f"{self.region}100201")[:11]), "GRID_FORMAT"),
            (RESIDENCE, timeline.RESIDENTS_TOPIC, "residence status unknown to this reader",
             lambda r: r.update(status="UNKNOWN"), "RESIDENCE_STATUS_UNKNOWN"),
        ]
        to_row = {TAX: timeline.tax_row, STATUS: timeline.status_row, RESIDENCE: timeline.resident_row}
        total = sum(len(v) for v in good.values())
        n = max(len(corruptions), round(self.profile.malformed_rate * total))
        for i in range(n):
            kind, topic, what, corrupt, code = corruptions[i % len(corruptions)]
            if not good[kind]:
                continue
            row = to_row[kind](rng.choice(good[kind]))
            corrupt(row)
            self.malformed.append(MalformedRow(topic, row, code, what))


__all__ = [
    "AreaTruth",
    "COVERED",
    "County",
    "CountyProfile",
    "CountyTruth",
    "DECEASED",
    "DUPLICATE_ENROLLMENT",
    "ENROLLED_UNPAID",
    "Employer",
    "GAP_REASONS",
    "Grid",
    "IN_COUNTY",
    "IN_WAITING_PERIOD",
    "LAPSED",
    "MOVED_OUT",
    "NOT_ENROLLED",
    "PersonTruth",
    "SUBSIDISED_NOT_COVERED",
    "SimPerson",
    "TRANSFER_INCOMPLETE",
    "Township",
    "compute_truth",
    "expected_outcome",
    "generate_county",
]
