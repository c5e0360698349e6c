"""Transfers (医保关系转移接续, 医保办发〔2021〕43号): the rules of one transfer's two halves.

One transfer is identified by its document number (``transfer_id``) and has two halves:
the sending region's transfer-out (转出) and the receiving region's transfer-in (转入).
Both halves of a transfer between two regions of this ledger live in the same Person
aggregate (one aggregate per insured person, ledger-wide), so matching them is a rule on
the person's own state. Each rule here is a pure function or a named guard; the Person
commands call them before triggering any event, so a refusal writes nothing.

Lifecycle of one transfer (``status`` of its :class:`ledger.domain.history.Transfer` in the
person's history, ``Person.transfers``)::

    REQUESTED (the person applied at the receiving region; optional) --out half--> OUT_COMPLETED
    OUT_COMPLETED --in half matched--> DONE
          |--cancelled by the sending region--> CANCELLED
          '--rejected by the receiving region--> REJECTED
    REQUESTED --cancelled / rejected--> CANCELLED / REJECTED

An in half from outside this ledger (another province) is ``DONE`` at once and marked
``external``. Entries written by the events of before this module (``TransferredOut`` /
``TransferredIn``) have no ``status``; :func:`status_of` reads
them as ``LEGACY_OPEN`` / ``LEGACY_DONE``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Iterable

from ledger.domain.errors import Conflict, DomainError

if TYPE_CHECKING:  # (the history imports the person, which imports this module)
    from ledger.domain.history import Transfer

REQUESTED = "REQUESTED"
OUT_COMPLETED = "OUT_COMPLETED"
DONE = "DONE"
CANCELLED = "CANCELLED"
REJECTED = "REJECTED"
LEGACY_OPEN = "LEGACY_OPEN"
LEGACY_DONE = "LEGACY_DONE"

#: Statuses in which a transfer's in half is still awaited.
OPEN_STATUSES = frozenset({OUT_COMPLETED, LEGACY_OPEN})

STATUS_LABELS = {
    REQUESTED: "已申请待转出",
    OUT_COMPLETED: "已转出待转入",
    DONE: "已完成",
    CANCELLED: "已撤销",
    REJECTED: "已拒绝",
    LEGACY_OPEN: "已转出待转入(旧记录)",
    LEGACY_DONE: "已完成(旧记录)",
}


def status_of(transfer: Transfer) -> str:
    """The lifecycle status (转移接续状态) of one transfer entry, old entries included."""
    status = transfer.status
    if status:
        return status
    if transfer.direction == "OUT" and transfer.completed_on is None:
        return LEGACY_OPEN
    return LEGACY_DONE


def require_months(value: Any, field: str = "contribution_months") -> int:
    """Contribution months (缴费月数) are a whole number of months, zero or more."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DomainError("MONTHS_INVALID", f"缴费月数须为不小于 0 的整数 (contribution months must be a whole "
                                            f"number ≥ 0); got {value!r}", field=field)
    return value


def check_transfer_id_free(transfers: dict[str, Transfer], transfer_id: str) -> None:
    """Guard (转移单号唯一): a transfer document number is used by one transfer only, never twice."""
    existing = transfers.get(transfer_id)
    if existing is not None:
        raise Conflict(
            "TRANSFER_EXISTS",
            f"转移单号 {transfer_id} 已登记（状态：{STATUS_LABELS.get(status_of(existing), status_of(existing))}），"
            f"不能重复办理 (transfer {transfer_id} is already recorded for this person)",
            transfer_id=transfer_id, status=status_of(existing),
        )


def check_not_same_region(sending_region: str, receiving_region: str) -> None:
    """Guard (转出地与转入地不同): a transfer moves a person between two different regions."""
    if sending_region == receiving_region:
        raise DomainError(
            "TRANSFER_SAME_REGION",
            f"转出地与转入地相同（{sending_region}），无需办理转移接续 (the sending and receiving region are the same)",
            region_code=sending_region,
        )


def check_out_half_exists(counterpart_region: str, ledger_regions: Iterable[str], transfer_id: str) -> bool:
    """Guard (先转出后转入): an in half whose sending region is one of this ledger's regions needs
    that region's out half first, so the balance and months are never counted twice; a sending
    region outside this ledger (跨省, another province) is accepted with its source document.

    Returns True for an external transfer (the sending region is not in this ledger).
    """
    if counterpart_region in set(ledger_regions):
        raise DomainError(
            "TRANSFER_OUT_MISSING",
            f"转出地 {counterpart_region} 属于本系统，但尚未办理转移单 {transfer_id} 的转出；须先由转出地办理转出，"
            f"转入地再接续 (the sending region is in this ledger and has not recorded the transfer-out yet)",
            transfer_id=transfer_id, counterpart_region=counterpart_region,
        )
    return True


def check_request_matches(request: Transfer, sending_region: str, receiving_region: str) -> None:
    """Guard (按申请转出): an out half answering a request goes from and to the regions requested."""
    if (request.region_code, request.counterpart_region) != (sending_region, receiving_region):
        raise DomainError(
            "TRANSFER_MISMATCH",
            f"转移单 {request.transfer_id} 申请的是 {request.region_code}→{request.counterpart_region}，"
            f"转出却是 {sending_region}→{receiving_region} (the transfer-out does not answer the request)",
            transfer_id=request.transfer_id,
        )


def check_open(transfer: Transfer, action: str, *, legacy_ok: bool = False,
               requested_ok: bool = False) -> None:
    """Guard (转移未办结): only a transfer whose out half awaits its in half can be received, cancelled or
    rejected. An old out half (``LEGACY_OPEN``) can be received (``legacy_ok``) but not cancelled: it
    ended the enrollment instead of suspending it, so there is nothing to resume."""
    status = status_of(transfer)
    if status == DONE or status == LEGACY_DONE:
        raise Conflict(
            "TRANSFER_EXISTS",
            f"转移单 {transfer.transfer_id} 已完成转入，不能再{action} (transfer already completed)",
            transfer_id=transfer.transfer_id, status=status,
        )
    if status != OUT_COMPLETED and not (legacy_ok and status == LEGACY_OPEN) and \
            not (requested_ok and status == REQUESTED):
        raise DomainError(
            "TRANSFER_NOT_OPEN",
            f"转移单 {transfer.transfer_id} 状态为{STATUS_LABELS.get(status, status)}，不能再{action} "
            f"(the transfer is not awaiting its transfer-in)",
            transfer_id=transfer.transfer_id, status=status,
        )


@dataclass(frozen=True)
class Matched:
    """What a transfer-in receives after matching (接续匹配): exactly what the out half sent."""

    account_balance_fen: int
    contribution_months: int


def match_in_half(
    out_half: Transfer,
    *,
    counterpart_region: str | None,
    receiving_region: str | None,
    account_balance_fen: int | None,
    contribution_months: int | None,
) -> Matched:
    """The in half of a transfer matched against its out half (转入与转出匹配).

    The receiving region accepts exactly what the sending region sent: figures left out
    mean "what was sent"; figures given must equal it, and so must the regions named,
    else ``TRANSFER_MISMATCH`` (money and months move, they are never created).
    """
    tid = out_half.transfer_id
    problems = []
    if counterpart_region and out_half.region_code and counterpart_region != out_half.region_code:
        problems.append(f"转出地 {counterpart_region} ≠ 转出记录的 {out_half.region_code}")
    if receiving_region and receiving_region != out_half.counterpart_region:
        problems.append(f"转入地 {receiving_region} ≠ 转出记录的 {out_half.counterpart_region}")
    if account_balance_fen is not None and account_balance_fen != out_half.account_balance_fen:
        problems.append(f"个人账户余额 {account_balance_fen} 分 ≠ 转出的 {out_half.account_balance_fen} 分")
    if contribution_months is not None and contribution_months != out_half.contribution_months:
        problems.append(f"缴费月数 {contribution_months} ≠ 转出的 {out_half.contribution_months}")
    if problems:
        raise DomainError(
            "TRANSFER_MISMATCH",
            f"转入与转移单 {tid} 的转出不一致：{'；'.join(problems)}。转入只接收转出地转出的余额和月数，"
            f"不填则自动按转出数接收 (the transfer-in must accept exactly what was sent)",
            transfer_id=tid, sent_fen=out_half.account_balance_fen,
            sent_months=out_half.contribution_months,
        )
    if status_of(out_half) == LEGACY_OPEN:
        # An old out half moved the balance but left the months with the person: receiving them
        # again would count them twice, so only the balance arrives.
        return Matched(out_half.account_balance_fen, 0)
    return Matched(out_half.account_balance_fen, out_half.contribution_months)


def external_figures(account_balance_fen: int | None, contribution_months: int | None, transfer_id: str) -> Matched:
    """An external in half (跨省转入) credits what its source document states; both figures must be given."""
    if account_balance_fen is None or contribution_months is None:
        raise DomainError(
            "TRANSFER_FIGURES_REQUIRED",
            f"省外转入（转移单 {transfer_id}）须按转出地联系函填写个人账户余额和缴费月数 "
            f"(an external transfer-in states the balance and months of its source document)",
            transfer_id=transfer_id,
        )
    return Matched(account_balance_fen, require_months(contribution_months))


def holdings(person: Any) -> tuple[int, int]:
    """(personal-account fen, contribution months) the ledger holds for a person over all its
    regions (转移守恒): what the region in force holds plus what is in transit (sent by an
    open out half, not yet received). An internal transfer never changes it; an external
    transfer-in adds exactly what its document states."""
    in_transit = [t for t in person.transfers.values() if t.status == OUT_COMPLETED]
    return (
        person.account_balance_fen + sum(t.account_balance_fen for t in in_transit),
        person.contribution_months + sum(t.contribution_months for t in in_transit),
    )


def next_coverage_year_start(day: date) -> date:
    """1 January after ``day``: where a resident-to-resident transfer takes effect (次年生效)."""
    return date(day.year + 1, 1, 1)


@dataclass(frozen=True)
class Effect:
    """When the receiving region's enrollment starts after a transfer-in, and why (生效规则)."""

    start: date
    explanation: str


def transfer_effect(sending_scheme: str | None, receiving_scheme: str, in_date: date) -> Effect:
    """Where a transfer takes effect in the receiving region (转移生效时间).

    A resident-to-resident transfer (城乡居民→城乡居民) takes effect from the next coverage
    year: the current year was paid to the sending region and its coverage stays there.
    Any other transfer (an employee transfer carries months and balance, 职工医保转移接续
    累计缴费年限和个人账户余额) takes effect on the day the in half completes.
    """
    if sending_scheme == "RESIDENT" and receiving_scheme == "RESIDENT":
        start = next_coverage_year_start(in_date)
        return Effect(start, f"城乡居民之间转移，当年待遇由转出地保障，自次年 {start.isoformat()} 起在转入地参保 "
                             f"(resident-to-resident: takes effect from the next coverage year)")
    return Effect(in_date, f"转入完成之日 {in_date.isoformat()} 起在转入地参保，缴费月数和个人账户余额随转移接续 "
                           f"(takes effect when the transfer-in completes; months and balance carried)")


def gap_months(last_covered: date, resumed: date) -> int:
    """Whole calendar months without coverage between the last covered day and the day coverage
    resumes (中断月数): 0 when it resumes within the month after, e.g. 31 Mar → 15 Apr."""
    months = (resumed.year - last_covered.year) * 12 + resumed.month - last_covered.month - 1
    return max(0, months)


@dataclass(frozen=True)
class GapRule:
    """What a break in coverage around a transfer means (转移接续中断处理), with its explanation."""

    gap_months: int
    back_pay_allowed: bool  # 可补缴
    retroactive: bool  # 补缴后追溯享受待遇
    waiting_months: int  # 待遇等待期
    explanation: str


def gap_rule(gap: int, transfer_policy: Any, waiting_policy: Any) -> GapRule:
    """The rule for a gap of ``gap`` months between the two halves' coverage (医保办发〔2021〕43号):

    * no gap: coverage continues, nothing to pay back;
    * at most ``back_pay_max_gap_months`` (3): the months may be back-paid (补缴) and the
      coverage is then retroactive (追溯享受), no waiting period;
    * longer: a waiting period (待遇等待期) of the policy's fixed months plus one per further
      year without coverage, never more than ``waiting_max_months`` (6).
    """
    limit = transfer_policy.back_pay_max_gap_months
    if gap <= 0:
        return GapRule(0, False, False, 0, "转移接续无中断，待遇连续 (no gap: coverage continues)")
    if gap <= limit:
        return GapRule(gap, True, True, 0, f"中断 {gap} 个月（不超过 {limit} 个月），可补缴中断期间费用，补缴后追溯享受待遇 "
                                           f"(a gap of at most {limit} months may be back-paid with retroactive coverage)")
    gap_years = -(-gap // 12)
    declared = waiting_policy.fixed_months + waiting_policy.per_gap_year_months * max(0, gap_years - 1)
    waiting = min(declared, transfer_policy.waiting_max_months)
    return GapRule(gap, False, False, waiting,
                   f"中断 {gap} 个月（超过 {limit} 个月），设 {waiting} 个月待遇等待期（最长 {transfer_policy.waiting_max_months} 个月）"
                   f" (a longer gap carries a waiting period of {waiting} months)")


#: Event class names that touch a transfer (the matched ones and those of before issue 18).
TRANSFER_EVENTS = frozenset({"TransferRequested", "TransferOutCompleted", "TransferInCompleted", "TransferCancelled", "TransferredOut",
                             "TransferredIn"})


def transfer_findings(events: Iterable[Any]) -> list[tuple[str, int, str]]:
    """Check a person's stored history for transfers that created or lost money or months (转移核查):
    (code, version, message) for each problem found, replaying the events in order.

    * ``TRANSFER_OUT_FIGURES``: an out half sent other figures than the person held then;
    * ``TRANSFER_HALVES_DISAGREE``: a completed in half received other figures than its out half sent;
    * ``TRANSFER_IN_WITHOUT_OUT``: an in half from a region of this ledger's events with no out half;
    * ``TRANSFER_MONTHS_COPIED``: an old (unmatched) pair of halves of one transfer that counted the
      months twice (the old out half kept them).
    """
    findings: list[tuple[str, int, str]] = []
    person: Any = None
    sent: dict[str, Any] = {}
    for event in events:
        name = type(event).__name__
        v = event.originator_version
        if name in ("TransferOutCompleted", "TransferredOut") and person is not None:
            held = (person.account_balance_fen, max(0, person.contribution_months))
            figures = (event.account_balance_fen, event.contribution_months)
            if name == "TransferOutCompleted" and figures != held:
                findings.append(("TRANSFER_OUT_FIGURES", v, (
                    f"transfer {event.transfer_id}: the out half sent {figures[0]} fen and {figures[1]} months but the "
                    f"person held {held[0]} fen and {held[1]} months")))
            sent[event.transfer_id] = event
        elif name in ("TransferInCompleted", "TransferredIn"):
            out = sent.get(event.transfer_id)
            external = getattr(event, "external", out is None)
            if out is not None and not external:
                # An old out half kept the months: a matched in half of it receives the balance only.
                months_sent = 0 if (type(out).__name__, name) == ("TransferredOut", "TransferInCompleted") \
                    else out.contribution_months
                if (event.account_balance_fen, event.contribution_months) != (out.account_balance_fen, months_sent):
                    findings.append(("TRANSFER_HALVES_DISAGREE", v, (
                        f"transfer {event.transfer_id}: the in half received {event.account_balance_fen} fen and "
                        f"{event.contribution_months} months, the out half (version {out.originator_version}) sent "
                        f"{out.account_balance_fen} fen and {out.contribution_months} months")))
                if name == "TransferredIn" and type(out).__name__ == "TransferredOut" and event.contribution_months:
                    findings.append(("TRANSFER_MONTHS_COPIED", v, (
                        f"transfer {event.transfer_id}: {event.contribution_months} months were counted in while the "
                        f"out half (version {out.originator_version}) kept them: counted twice")))
            elif name == "TransferInCompleted" and not external:
                findings.append(("TRANSFER_IN_WITHOUT_OUT", v, (
                    f"transfer {event.transfer_id}: an in half matched to no out half")))
        person = event.mutate(person)
    return findings


@dataclass(frozen=True)
class TransferCalendar:
    """The working-day calendar and time limits of transfers (办结时限), from the policy tables.

    ``holidays`` are weekdays off (法定节假日), ``extra_workdays`` weekend days worked
    instead (调休上班); both come from the policy files, never from code.
    """

    sending_working_days: int
    receiving_working_days: int
    holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()

    @classmethod
    def from_policies(cls, policies: Iterable[Any]) -> TransferCalendar:
        """One calendar from the ``transfer`` parts of several years' tables (limits of the latest)."""
        tables = list(policies)
        if not tables:
            raise DomainError("POLICY_YEAR_UNKNOWN", "no policy table holds the transfer time limits")
        latest = tables[-1]
        return cls(
            sending_working_days=latest.sending_working_days,
            receiving_working_days=latest.receiving_working_days,
            holidays=frozenset().union(*(t.holidays for t in tables)),
            extra_workdays=frozenset().union(*(t.extra_workdays for t in tables)),
        )

    def is_working_day(self, day: date) -> bool:
        """A working day (工作日): Monday to Friday except holidays, plus weekend days worked instead."""
        if day in self.extra_workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: date, days: int) -> date:
        """The day ``days`` working days after ``start`` (the start day itself not counted)."""
        day, left = start, days
        while left > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 if ``end`` is not after ``start``)."""
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count += 1
        return count


@dataclass(frozen=True)
class TransferState:
    """Where one transfer stands on a day (转移接续办理状态), and why."""

    transfer_id: str
    status: str
    awaiting: str | None  # "SENDING": the out half is due; "RECEIVING": the in half is due; None: closed
    due_on: date | None  # last day of the awaited half's time limit
    overdue: bool  # past that day and still open (超期)
    overdue_working_days: int
    explanation: str


def transfer_status(transfer: Transfer, today: date, calendar: TransferCalendar) -> TransferState:
    """The state of one transfer on ``today`` (转移接续时限): each open half has a time limit in
    working days (转出地 10, 转入地 5, from the policy tables) and is overdue (超期) after it.

    A request recorded on day R (the person applied at the receiving region) leaves the out
    half due within ``sending_working_days`` working days after R; an out half completed on
    day D leaves the in half due within ``receiving_working_days`` working days after D.
    """
    status = status_of(transfer)
    tid = transfer.transfer_id
    if status in OPEN_STATUSES:
        awaiting, since, limit = "RECEIVING", transfer.started_on, calendar.receiving_working_days
        half = "转入地"
    elif status == REQUESTED:
        awaiting, since, limit = "SENDING", transfer.requested_on, calendar.sending_working_days
        half = "转出地"
    else:
        label = STATUS_LABELS.get(status, status)
        if transfer.external:
            label += "（省外转入，本系统无转出记录）"
        return TransferState(tid, status, None, None, False, 0, f"转移单 {tid} {label}")
    due = calendar.add_working_days(since, limit)
    late = calendar.working_days_between(due, today) if today > due else 0
    if late:
        text = (f"转移单 {tid} 自 {since.isoformat()} 起待{half}办理，时限 {limit} 个工作日（至 {due.isoformat()}），"
                f"已超期 {late} 个工作日 (overdue)")
    else:
        text = f"转移单 {tid} 待{half}办理，时限 {limit} 个工作日，须于 {due.isoformat()} 前办结"
    return TransferState(tid, status, awaiting, due, late > 0, late, text)


__all__ = [
    "CANCELLED", "DONE", "REQUESTED", "LEGACY_DONE", "LEGACY_OPEN", "Matched", "OPEN_STATUSES", "OUT_COMPLETED", "REJECTED",
    "STATUS_LABELS", "TRANSFER_EVENTS", "transfer_findings", "Effect", "GapRule", "gap_months", "gap_rule", "TransferCalendar", "TransferState", "transfer_effect", "transfer_status",
    "check_not_same_region", "check_open", "check_request_matches", "check_out_half_exists",
    "check_transfer_id_free", "external_figures", "holdings", "match_in_half", "next_coverage_year_start",
    "require_months", "status_of",
]
