"""The read side the HTTP routes ask: entitlement, grid gaps and coverage, arrears.

:class:`ViewReads` answers over the stored views (:class:`projections.queries.ViewQueries`
on the system's view store, :func:`projections.factory.views`).

A person's entitlement is fresh by itself: the read brings that one person up to date
from the ledger's own events of them (:mod:`projections.queries`, "Fresh reads"), so it
includes every command the ledger recorded before it (this API's, the CLI's, a
consumer's), whether or not anything keeps the views up to date, and it never waits
for a backlog. The lists (grid gaps and coverage, arrears, quarantine) are as fresh as
the views: before each list this API catches the views up with the ledger's
notification log (one :class:`~projections.projection_runner.ProjectionRunner` per app, under a
lock). When another process keeps the store up to date (``ledger project --follow``)
the catch-up finds nothing to do, or finds that runner mid-batch (``POSITION_MOVED``)
and leaves it to it. A deployment whose views are fed from Kafka (``ledger project
--source kafka``) must not also feed them from the log: start the API with
``LEDGER_API_CATCH_UP=0`` there (the lists are then as fresh as that runner).

The views hold no names and only masked ID numbers (个人信息保护法); a list shows who is
meant from the person's aggregate (loaded for the rows of a list in one statement on
PostgreSQL), masked or not as the caller's role allows.
"""
from __future__ import annotations

import threading
from datetime import date
from typing import Any, Protocol
from uuid import UUID

from infra.settings import setting
from ledger.log import get_logger
from projections.store import StoreError
from projections.factory import projection_runner, view_queries, views

log = get_logger("entrypoints.http.reads")

CATCH_UP_ENV = "LEDGER_API_CATCH_UP"


class ReadQueries(Protocol):
    """What the routes ask of the read side."""

    def persons(self, person_ids: list[str]) -> dict[str, Any]: ...

    def identities(self, person_ids: list[str]) -> dict[str, tuple[str, str, str]]: ...

    def entitlement(self, person_id: UUID, *, year: int, on: date) -> dict[str, Any]: ...

    def grid_known(self, code: str) -> bool: ...

    def gaps(self, code: str, *, year: int, as_of: date, reason: str | None = None) -> list[dict[str, Any]]: ...

    def coverage(self, code: str, *, year: int, as_of: date) -> dict[str, Any] | None: ...

    def areas(self, region: str, *, year: int, as_of: date) -> dict[str, dict[str, dict[str, Any]]]: ...

    def arrears(self, *, as_of: date, region: str | None = None, grid: str | None = None,
                sort: str | None = "outstanding_fen", limit: int | None = None) -> list[dict[str, Any]]: ...

    def fees(self, *, as_of: date, region: str | None = None, grid: str | None = None, employer: str | None = None,
             include_cleared: bool = False) -> list[dict[str, Any]]: ...

    def quarantined(self) -> list[dict[str, Any]]: ...

    def resident_collection(self, region: str, *, year: int, township: str | None = None) -> list[dict[str, Any]]: ...


class ViewReads:
    """:class:`ReadQueries` over :class:`projections.queries.ViewQueries`: a person fresh from their events,
    the lists caught up before each read."""

    def __init__(self, system: Any, *, catch_up: bool | None = None, store: Any = None) -> None:
        if catch_up is None:
            catch_up = setting(CATCH_UP_ENV)
        self.ledger = system.ledger
        self.store = store if store is not None else views(system)
        self.queries = view_queries(system, self.store)
        self.runner = projection_runner(system, source="log", store=self.store) if catch_up else None
        self._lock = threading.Lock()

    def catch_up(self) -> None:
        if self.runner is None:
            return

        with self._lock:
            try:
                self.runner.run_once()
            except StoreError as e:
                if e.code != "POSITION_MOVED":
                    raise
                log.info("views_caught_up_elsewhere", message=e.message)

    # ------------------------------------------------------------ people
    def persons(self, person_ids: list[str]) -> dict[str, Any]:
        """The persons of the ledger with these ids (loaded in one go), by id text."""
        return {str(pid): p for pid, p in self.ledger.load_many([UUID(p) for p in person_ids]).items()}

    def identities(self, person_ids: list[str]) -> dict[str, tuple[str, str, str]]:
        return identities_of(self.persons(person_ids))

    def entitlement(self, person_id: UUID, *, year: int, on: date) -> dict[str, Any]:
        """Fresh without a catch-up: the person is brought up to date from their own events (see above)."""
        answer, decision = self.queries.entitlement_on(person_id, year, on)
        return {
            "person_id": answer["person_id"],
            "year": answer["year"],
            "on": on,
            "covered": decision.covered,
            "reason": decision.reason,
            "reason_code": decision.reason_code,
            "reason_values": decision.reason_values,
            "scheme": decision.scheme,
            "period": decision.period,
            "region_code": decision.region_code,
            "policy_version": decision.policy_version,
            "sources": list(decision.sources),
            "resident_year": answer["resident"],
            "employee_year": answer["employee"],
            "summary": answer["summary"],
        }

    # ------------------------------------------------------------ grids
    def grid_known(self, code: str) -> bool:
        self.catch_up()
        return self.store.place_known(**{"grid" if len(code) == 12 else "township": code})

    def gaps(self, code: str, *, year: int, as_of: date, reason: str | None = None) -> list[dict[str, Any]]:
        self.catch_up()
        return self.queries.gap_list(code, year, as_of, reason=reason)

    def coverage(self, code: str, *, year: int, as_of: date) -> dict[str, Any] | None:
        self.catch_up()
        rates = self.queries.coverage_rates(year, as_of, region=code[:6])
        return rates["grids" if len(code) == 12 else "townships"].get(code)

    def areas(self, region: str, *, year: int, as_of: date) -> dict[str, dict[str, dict[str, Any]]]:
        """Coverage of every township and grid of the region with people in the views (``townships``, ``grids``)."""
        self.catch_up()
        return self.queries.coverage_rates(year, as_of, region=region)

    def arrears(self, *, as_of: date, region: str | None = None, grid: str | None = None,
                sort: str | None = "outstanding_fen", limit: int | None = None) -> list[dict[str, Any]]:
        """Arrears of a region and/or a grid; a 9-digit ``grid`` is a township."""
        self.catch_up()
        if grid is not None and len(grid) == 9:
            rows = self.queries.arrears(as_of, region=region or grid[:6], sort=sort)
            rows = [r for r in rows if r["township_code"] == grid]
            return rows[:limit] if limit is not None else rows
        return self.queries.arrears(as_of, region=region, grid=grid, sort=sort, limit=limit)

    def fees(self, *, as_of: date, region: str | None = None, grid: str | None = None, employer: str | None = None,
             include_cleared: bool = False) -> list[dict[str, Any]]:
        """The late-fee list (滞纳金清单) of a region, grid or township (all three None: everywhere) and/or employer."""
        self.catch_up()
        if grid is not None and len(grid) == 9:
            rows = self.queries.fees(as_of, region=region or grid[:6], employer=employer,
                                     include_cleared=include_cleared)
            return [r for r in rows if (r["grid_code"] or "").startswith(grid)]
        return self.queries.fees(as_of, region=region, grid=grid, employer=employer, include_cleared=include_cleared)

    def resident_collection(self, region: str, *, year: int, township: str | None = None) -> list[dict[str, Any]]:
        """The resident due rows of coverage ``year`` in the region or township (assessed, paid steps)."""
        self.catch_up()
        return self.queries.resident_collection(year, region=region, township=township)

    # ------------------------------------------------------------ operations
    def quarantined(self) -> list[dict[str, Any]]:
        """Persons whose views are in quarantine (projections.projection_runner), after a catch-up."""
        self.catch_up()
        return self.queries.quarantined()


def identities_of(persons: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """ID type, ID number and name of loaded persons, by id text."""
    return {pid: (p.id_type, p.id_number, p.name) for pid, p in persons.items()}


__all__ = ["CATCH_UP_ENV", "ReadQueries", "ViewReads", "identities_of"]
