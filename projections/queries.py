"""Questions asked of the stored views: what the CLI, the HTTP API and the grid worker's page call.

:class:`ViewQueries` answers over a :class:`~projections.store.ViewStore` with the
pure functions of the projections, so a stored answer is the answer the pure
functions give over the whole view:

* :meth:`~ViewQueries.entitlement` -- one person's coverage year (待遇资格);
* :meth:`~ViewQueries.covered_on` -- covered on a day, why (not), from which events;
* :meth:`~ViewQueries.arrears` -- the arrears list (欠费名单) on a day;
* :meth:`~ViewQueries.gap_list` -- who in a grid or township is not covered, and why
  (应保尽保; subsidised people first);
* :meth:`~ViewQueries.coverage_rates` -- coverage per grid and township.

Lists carry the person id and the masked ID number (``6109********1234``), never
the number itself; names are not in the views.

Input a user can get wrong raises a :class:`~ledger.domain.errors.DomainError` with a
stable code: ``DATE_INVALID``, ``YEAR_INVALID``, ``POLICY_YEAR_UNKNOWN``,
``REGION_FORMAT`` / ``REGION_UNKNOWN``, ``GRID_FORMAT`` / ``GRID_UNKNOWN`` /
``TOWNSHIP_UNKNOWN``, ``PERSON_NOT_FOUND``, ``REASON_UNKNOWN``, ``SORT_KEY_UNKNOWN``,
``LIMIT_INVALID``; ``VIEWS_EMPTY`` when nothing was projected yet, ``VIEWS_OUTDATED``
when the tables come from another version of the store; ``PERSON_QUARANTINED`` (409) for a
person whose views could not be derived (see projections.projection_runner, "Quarantine"): the
lists leave them out meanwhile, and answer for everyone else.

Fresh reads of one person (read your writes). Given ``person_events`` (a reader of
the ledger's own events of one person above a version:
:func:`projections.sources.ledger_person_events`, what :func:`projections.factory.view_queries`
passes), :meth:`~ViewQueries.entitlement` and :meth:`~ViewQueries.covered_on` bring the
asked person up to date themselves: the stored history row, plus the person's events the
views have not applied yet (one indexed query), folded with the domain's fold (a version
already applied is skipped) and derived in memory. A person the ledger has and the views
have never seen (just registered) is folded from version 1. Nothing is written: the
fresher rows stay in memory, the views and their positions remain the runner's alone (a
second writer would race the follower's transaction). So whatever the ledger recorded
before the read (a clerk's command that returned, by any clerk, any process) is in the
answer, with or without a runner keeping the views up to date. Lists (arrears, gaps,
coverage rates) are as fresh as the views. Events of the person that cannot be applied
(a version missing, two events at one version) answer ``EVENT_GAP`` / ``EVENT_MISMATCH``
(409).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any
from uuid import UUID

from ledger.domain.errors import Conflict, DomainError, NotFound
from ledger.domain.person import business_date
from ledger.domain.places import parse_grid_code, validate_region_code

from ledger.domain.coverage import Decision, row_covered_on
from ledger.domain.gaps import REASONS, evaluation_day
from ledger.domain.history import ProjectionError, event_type, fold_many

from projections.arrears import arrears_list, fees_list, sort_arrears
from projections.coverage_gaps import coverage_counts, with_rates
from projections.entitlement import EntitlementProjection
from projections.gap_spells import line_on
from projections.projection_runner import STREAM_ERRORS, PolicyCache, coverage_years, policy_fingerprint
from projections.store import StoreError, ViewStore, masked_id_of

#: Reads one person's stored events above a version, in order: ``(person id, version) -> events``
#: (:func:`projections.sources.ledger_person_events`).
PersonEventsAfter = Callable[[str, int], Sequence[Any]]


# --------------------------------------------------------------------------- input
def today() -> date:
    """Today's business date (China Standard Time)."""
    return business_date(datetime.now(timezone.utc))


def parse_day(value: date | str | None, what: str = "date") -> date:
    """A calendar date from a ``date`` or ISO text (``2025-03-01``); None is today. Raises ``DATE_INVALID``."""
    if value is None:
        return today()
    if isinstance(value, datetime):
        raise DomainError("DATE_INVALID", f"the {what} must be a calendar date, not an instant ({value.isoformat()})")
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise DomainError("DATE_INVALID", f"the {what} {text[:30]!r} is not a date; write it as YYYY-MM-DD, "
                                          "e.g. 2025-03-01", value=text[:30]) from None


def parse_year(value: int | str | None, default: date | None = None) -> int:
    """A coverage year (4 digits); None is the year of ``default`` (or of today). Raises ``YEAR_INVALID``."""
    if value is None:
        return (default or today()).year
    text = str(value).strip()
    if isinstance(value, bool) or not (text.isdigit() and len(text) == 4):
        raise DomainError("YEAR_INVALID", f"the coverage year {text[:20]!r} must be 4 digits, e.g. 2025")
    return int(text)


def parse_person_id(value: UUID | str) -> str:
    try:
        return str(UUID(str(value)))
    except ValueError:
        raise NotFound("PERSON_NOT_FOUND", f"{str(value)[:40]!r} is not a person id of this ledger") from None


@dataclass(frozen=True)
class Place:
    """A grid (12 digits) or a township (9 digits) a list is asked for."""

    kind: str  # "grid" | "township"
    code: str

    @property
    def region_code(self) -> str:
        return self.code[:6]


def parse_place(value: str | int) -> Place:
    """A grid code (村/社区, 12 digits) or a township code (乡镇/街道, 9 digits). Raises ``GRID_FORMAT``."""
    text = str(value).strip()
    if len(text) == 9 and text.isdigit():
        validate_region_code(text[:6])
        parse_grid_code(text + "001")  # the township block must be one in use
        return Place("township", text)
    return Place("grid", parse_grid_code(text).code)


# --------------------------------------------------------------------------- the queries
class ViewQueries:
    """The views' questions over one store (see the module docstring)."""

    def __init__(self, store: ViewStore, policies: Any, *, person_events: PersonEventsAfter | None = None) -> None:
        """``person_events``: the ledger's reader of one person's events, for fresh reads of one person
        (see the module docstring); without it a person is answered as the views hold them."""
        store.check_layout()
        self.store = store
        self.policies = policies if isinstance(policies, PolicyCache) else PolicyCache(policies)
        self.projection = EntitlementProjection(self.policies)
        self.fingerprint = policy_fingerprint(self.policies)
        self.person_events = person_events

    # ---------------------------------------------------------------- checks
    def _region(self, value: str) -> str:
        region = validate_region_code(value)
        if region not in self.policies.regions():
            raise NotFound("REGION_UNKNOWN", f"region {region} is not served by this ledger; it serves "
                                             f"{', '.join(sorted(self.policies.regions()))}", region_code=region)
        return region

    def _policy_year(self, year: int, region: str | None = None) -> None:
        """Raises ``POLICY_YEAR_UNKNOWN`` when no policy table covers the year (in the region, if given)."""
        if region is not None:
            self.policies.get(region, year)
            return
        years = coverage_years(self.policies)
        if year not in years:
            raise NotFound("POLICY_YEAR_UNKNOWN", f"no policy table covers coverage year {year}; tables exist for "
                                                  f"{', '.join(str(y) for y in years)}", coverage_year=year)

    def _views_filled(self) -> None:
        """Raises ``VIEWS_EMPTY`` when nothing was ever projected (a clearer answer than "unknown")."""
        if not self.store.all_positions():
            raise NotFound("VIEWS_EMPTY", "the views are empty: bring them up to date first (ledger project)")

    def _known(self, place: Place) -> Place:
        self._region(place.region_code)
        if not self.store.place_known(**{place.kind: place.code}):
            self._views_filled()
            code = "GRID_UNKNOWN" if place.kind == "grid" else "TOWNSHIP_UNKNOWN"
            raise NotFound(code, f"no one in the ledger lives or lived in {place.kind} {place.code}; "
                                 f"check the code (统计用区划代码)", **{f"{place.kind}_code": place.code})
        return place

    def _row(self, person_id: UUID | str) -> tuple[dict[str, Any], str | None]:
        """The person's entitlement row, derived from their history with this book of policy tables,
        and their masked ID number when it comes from the ledger's events (None: ask the views).

        The views store the history once; the figures are derived again here, with the
        same pure function and, checked by fingerprint, the same policy tables the
        query tables were derived with (otherwise ``VIEWS_OUTDATED``). With
        ``person_events`` the history is first brought up to date from the ledger
        (see the module docstring, "Fresh reads").
        """
        pid = parse_person_id(person_id)
        try:
            history = self.store.history(pid)
        except (ProjectionError, ValueError) as error:  # a stored history that does not read back: as below
            raise Conflict("PERSON_QUARANTINED", "该参保人的待遇视图无法生成，已交由视图重算处理；请联系管理员"
                                                 "（ledger status）。(this person's views cannot be derived)",
                           person_id=pid, reason=getattr(error, "code", type(error).__name__)) from None
        if history is None:
            self._not_quarantined(pid)  # a quarantined person's rows are removed: they are not "never seen"
        events: Sequence[Any] = ()
        if self.person_events is not None:
            events = self.person_events(pid, 0 if history is None else history.version)
        if history is None and not events:
            if self.person_events is not None:
                raise NotFound("PERSON_NOT_FOUND", "no person with that ID is registered in this ledger",
                               person_id=pid)
            self._views_filled()
            raise NotFound("PERSON_NOT_FOUND", "no person with that ID is in the views (not registered, or the "
                                               "views have not caught up yet: ledger project)", person_id=pid)
        built_with = self.store.meta().get("policies")
        if built_with is not None and built_with != self.fingerprint:
            raise StoreError("VIEWS_OUTDATED", (
                f"the views were built with other policy tables ({built_with}; this server has "
                f"{self.fingerprint}): rebuild them (ledger project --rebuild) or load the same tables"))
        masked = None
        try:
            if events:
                if history is None:
                    masked = next((masked_id_of(e) for e in events if event_type(e) == "Registered"), None)
                # ``history`` was just read from the store for this read alone: the fold may reuse its parts
                history = fold_many(history, events, owned=True)
            return self.projection.row(history), masked
        except ProjectionError as error:
            if error.code in STREAM_ERRORS:
                raise Conflict(error.code, (
                    "该参保人的事件不连续或重复（账本与视图不一致），暂时无法给出待遇资格；请联系管理员核查"
                    f"（ledger audit verify）。(this person's events cannot be applied: {error.message})"),
                    person_id=pid) from None
            raise _quarantined(pid, error) from None
        except DomainError:
            raise
        except Exception as error:  # noqa: BLE001 - a history the runner would quarantine too: not a 500
            raise _quarantined(pid, error) from None

    def _not_quarantined(self, pid: str) -> None:
        """Raises ``PERSON_QUARANTINED`` (409) when the person's views are in quarantine."""
        found = self.store.quarantined([pid])
        if found:
            q = found[0]
            raise Conflict("PERSON_QUARANTINED", (
                f"该参保人的待遇视图已被隔离（{q.code}），其他人的视图不受影响；修复后下次 ledger project 会重新生成。"
                f"(this person's views are quarantined since "
                f"{q.quarantined_at.isoformat() if q.quarantined_at else '?'}; see ledger status)"),
                person_id=pid, reason=q.code, event_id=q.event_id)

    def quarantined(self) -> list[dict[str, Any]]:
        """The persons whose views are in quarantine (masked ID, reason, the event that caused it, since when)."""
        return [q.as_dict() for q in self.store.quarantined()]

    # ---------------------------------------------------------------- one person
    def entitlement(self, person_id: UUID | str, year: int | str | None = None) -> dict[str, Any]:
        """One person's coverage year: the resident-year row, the employee months, the person now.

        Returns ``{"person_id", "masked_id", "year", "resident", "employee", "summary"}``;
        ``resident`` / ``employee`` are None when the ledger has nothing for that year.
        """
        return self._entitlement(*self._row(person_id), year)

    def entitlement_on(self, person_id: UUID | str, year: int | str | None,
                       day: date | str | None) -> tuple[dict[str, Any], Decision]:
        """:meth:`entitlement` and :meth:`covered_on` together, from one derivation (one read of the person)."""
        row, masked = self._row(person_id)
        return self._entitlement(row, masked, year), row_covered_on(row, parse_day(day))

    def _entitlement(self, row: dict[str, Any], masked: str | None, year: int | str | None) -> dict[str, Any]:
        y = parse_year(year)
        resident = row["years"].get(y)
        summary = row["summary"]
        region = (resident["region_code"] if resident else None) or (
            summary["enrollment"]["region_code"] if summary["enrollment"] else None) or (
            summary["household_grid"][:6] if summary["household_grid"] else None)
        try:
            self._policy_year(y, region)
        except NotFound as err:
            if err.code != "REGION_UNKNOWN":
                raise
            self._policy_year(y)
        pid = summary["person_id"]
        return {
            "person_id": pid,
            "masked_id": masked or self.store.masked_ids([pid]).get(pid),
            "year": y,
            "resident": resident,
            "employee": row["employee_years"].get(y),
            "summary": summary,
        }

    def covered_on(self, person_id: UUID | str, day: date | str | None = None) -> Decision:
        """Is the person covered on ``day`` (default today), and why (not)? With the events behind the answer."""
        row, _ = self._row(person_id)
        return row_covered_on(row, parse_day(day))

    # ---------------------------------------------------------------- lists
    def arrears(self, as_of: date | str | None = None, *, region: str | None = None, grid: str | None = None,
                sort: str | None = "outstanding_fen", descending: bool = True,
                limit: int | None = None) -> list[dict[str, Any]]:
        """The arrears list on ``as_of`` (default today), of one region and/or grid; see projections.arrears.

        Sorted by ``sort`` (one of ``projections.arrears.SORT_KEYS``; None keeps region,
        grid, person, period order), at most ``limit`` rows. Each row also has ``masked_id``.
        """
        day = parse_day(as_of, "as-of date")
        if region is not None:
            region = self._region(region)
        if grid is not None:
            grid = self._known(Place("grid", parse_grid_code(grid).code)).code
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise DomainError("LIMIT_INVALID", f"the limit must be a whole number of rows, at least 1 (got {limit!r})")
        if sort is not None:
            sort_arrears([], sort)  # SORT_KEY_UNKNOWN before any work
        view: dict[str, dict[str, Any]] = {}
        for due in sorted(self.store.open_dues(day, region=region, grid=grid), key=lambda d: (d["person_id"], d["seq"])):
            view.setdefault(due["person_id"], {"dues": []})["dues"].append(due["due"])
        rows = arrears_list(view, day, self.policies)
        if sort is not None:
            rows = sort_arrears(rows, sort, descending=descending)
        if limit is not None:
            rows = rows[:limit]
        masked = self.store.masked_ids(sorted({r["person_id"] for r in rows}))
        for r in rows:
            r["masked_id"] = masked.get(r["person_id"])
        return rows

    def fees(self, as_of: date | str | None = None, *, region: str | None = None, grid: str | None = None,
             employer: str | None = None, include_cleared: bool = False) -> list[dict[str, Any]]:
        """The late-fee list (滞纳金清单) on ``as_of`` of one region and/or grid (and employer): see
        :func:`projections.arrears.fees_list`. Each row also has ``masked_id``."""
        day = parse_day(as_of, "as-of date")
        if region is not None:
            region = self._region(region)
        if grid is not None:
            grid = self._known(Place("grid", parse_grid_code(grid).code)).code
        view: dict[str, dict[str, Any]] = {}
        for due in sorted(self.store.open_dues(day, region=region, grid=grid), key=lambda d: (d["person_id"], d["seq"])):
            view.setdefault(due["person_id"], {"dues": []})["dues"].append(due["due"])
        rows = fees_list(view, day, self.policies, include_cleared=include_cleared)
        if employer is not None:
            rows = [r for r in rows if r["employer_id"] == employer]
        masked = self.store.masked_ids(sorted({r["person_id"] for r in rows}))
        for r in rows:
            r["masked_id"] = masked.get(r["person_id"])
        return rows

    def gap_list(self, grid_or_township: str | int, year: int | str | None = None, as_of: date | str | None = None,
                 *, reason: str | None = None) -> list[dict[str, Any]]:
        """Everyone living in the grid (or township) not covered for ``year`` on ``as_of``, and why.

        The lines of :func:`projections.coverage_gaps.gap_list` (subsidised people first,
        then by reason, grid, person), each with ``masked_id``; ``reason`` keeps one reason.
        """
        place = self._known(parse_place(grid_or_township))
        day_asked = parse_day(as_of, "as-of date")
        y = parse_year(year, day_asked)
        self._policy_year(y, place.region_code)
        if reason is not None and reason not in REASONS:
            raise DomainError("REASON_UNKNOWN", f"{reason!r} is not a gap reason; use one of {', '.join(REASONS)}")
        day = evaluation_day(y, day_asked)
        lines = []
        for spell in self.store.spells_on(y, day, covered=False, **{place.kind: place.code}):
            if reason is not None and spell["reason"] != reason:
                continue
            line = line_on(spell, day)
            line["masked_id"] = spell["masked_id"]
            lines.append(line)
        lines.sort(key=lambda r: (REASONS.index(r["reason"]), r["grid_code"], r["person_id"]))
        return lines

    def resident_collection(self, year: int | str, *, region: str, township: str | None = None) -> list[dict[str, Any]]:
        """The resident due rows of coverage ``year`` in the region (or township): ``due_fen``, ``assessed``,
        ``paid_steps`` (day, net paid by then) each; see :func:`projections.dashboard.weekly_collection`."""
        region = self._region(region)
        return [d["due"] for d in self.store.resident_dues(parse_year(year), region=region, township=township)]

    def coverage_rates(self, year: int | str | None = None, as_of: date | str | None = None, *,
                       region: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
        """Per grid and per township: residents, covered, subsidised, rates (see coverage_gaps.coverage_rates)."""
        day_asked = parse_day(as_of, "as-of date")
        y = parse_year(year, day_asked)
        if region is not None:
            region = self._region(region)
        self._policy_year(y, region)
        grids: dict[str, dict[str, Any]] = {}
        townships: dict[str, dict[str, Any]] = {}
        for c in self.store.spell_counts(y, evaluation_day(y, day_asked), region=region):
            n = c["count"]
            for stats in (grids.setdefault(c["grid_code"], coverage_counts()),
                          townships.setdefault(c["grid_code"][:9], coverage_counts())):
                stats["residents"] += n
                stats["covered"] += n if c["covered"] else 0
                stats["subsidised"] += n if c["subsidised"] else 0
                stats["subsidised_covered"] += n if c["subsidised"] and c["covered"] else 0
                if c["reason"]:
                    stats["gaps_by_reason"][c["reason"]] += n
        return {
            "grids": {g: with_rates(s) for g, s in sorted(grids.items())},
            "townships": {t: with_rates(s) for t, s in sorted(townships.items())},
        }


def _quarantined(pid: str, error: BaseException) -> Conflict:
    """``PERSON_QUARANTINED`` for a person whose history cannot be folded or derived (the runner would
    quarantine them too): a 409 naming the kind of failure, not a 500."""
    return Conflict("PERSON_QUARANTINED", "该参保人的待遇视图无法生成，已交由视图重算处理；请联系管理员"
                                          "（ledger status）。(this person's views cannot be derived)",
                    person_id=pid, reason=type(error).__name__)


__all__ = ["PersonEventsAfter", "Place", "ViewQueries", "parse_day", "parse_place", "parse_year", "today"]
