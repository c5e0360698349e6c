"""Entitlement view (待遇资格): the domain's coverage answer per person, stored for reads.

The rules live in :mod:`ledger.domain.coverage` (funded, back payment, insured year,
gap years, waiting period, continuity, exemptions); this module only folds events into
rows with the domain's fold (:func:`ledger.domain.history.fold_many`) and keeps the
domain's answer (:func:`ledger.domain.coverage.derive`) beside the history.
"""
from __future__ import annotations

from typing import Any, Iterator

from ledger.domain.coverage import derive
from ledger.domain.history import PersonHistory, fold_many

from projections.person_view import PersonProjection


# --------------------------------------------------------------------------- the projection
class EntitlementProjection(PersonProjection):
    """Folds person events into the entitlement view ``{person_id: row}``.

    ``apply_row(row, event)`` is the pure per-person step (load the row by
    ``key(event)``, apply, store it back: what an incremental adapter does);
    ``apply(view, event)`` is the same on the whole view and returns a new dict
    sharing every untouched row.
    """

    name = "entitlement"

    def derive(self, history: PersonHistory) -> dict[str, Any]:
        return derive(history, self.policies)

    def row(self, history: PersonHistory, *, previous: dict[str, Any] | None = None,
            from_year: int | None = None) -> dict[str, Any]:
        """The person's entitlement row from their folded history (the view stores keep the history; readers derive this).

        ``previous`` (the row before the latest events) and ``from_year`` (the first year
        they touch, :func:`ledger.domain.coverage.years_touched`): only that year and later
        ones are derived again (see :func:`ledger.domain.coverage.derive`).
        """
        return {"history": history, **derive(history, self.policies, previous=previous, from_year=from_year)}

    def apply_row(self, row: dict[str, Any] | None, event: Any) -> dict[str, Any]:
        return self.apply_rows(row, [event])

    def apply_rows(self, row: dict[str, Any] | None, events: Any) -> dict[str, Any]:
        """Several events of this row in order, deriving the figures once."""
        history = fold_many(row["history"] if row else None, events)
        if row is not None and history is row["history"]:
            return row  # a duplicate: nothing changes
        return self.row(history)

    def apply(self, view: dict[str, Any], event: Any) -> dict[str, Any]:
        key = self.key(event)
        if key is None:
            return view
        old = view.get(key)
        new = self.apply_row(old, event)
        if new is old:
            return view
        out = dict(view)
        out[key] = new
        return out


def entitlement_rows(view: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The resident-year rows of the whole view, keyed (person_id, year), for storage or export."""
    for person_id in sorted(view):
        for year in sorted(view[person_id]["years"]):
            yield view[person_id]["years"][year]
