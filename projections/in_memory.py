"""Folding events into views: the pure part of the projection runner.

A projection is an object with

* ``name`` -- the view's name (``"entitlement"``, ``"arrears"``);
* ``initial()`` -- an empty view, a dict of rows keyed by person id;
* ``key(event)`` -- the row an event belongs to (the person id), or None to skip it
  (events of other aggregates, e.g. the ledger's ``SourceRecord`` index);
* ``apply_row(row | None, event) -> row`` -- the pure step on one row; it returns the
  very same row for a duplicate event;
* ``apply(view, event) -> view`` -- the same step on a whole view.

:func:`rebuild` folds a whole history into fresh views. **Incremental application
is the same step on each new event**: an adapter (Kafka consumer of
``ledger.events.v1``, or a follower of the local notification log) loads the row
``key(event)`` from its store, calls ``apply_row`` and writes the row back in the
same transaction as its position in the stream. Because each person's events
arrive in order and ``apply_row`` ignores any event at or below the row's version,
re-delivering events after a crash changes nothing, and applying a history in two
halves gives the view built at once (tests/unit/test_projection_runner.py). Events
of different persons may interleave in any order.

A view depends on the policy book too (derived dues, waiting periods): after a
policy table is added or corrected, rebuild the views (or re-derive each row from
its stored history).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any, Protocol


class Projection(Protocol):
    name: str

    def initial(self) -> dict[str, Any]: ...

    def key(self, event: Any) -> str | None: ...

    def apply_row(self, row: dict[str, Any] | None, event: Any) -> dict[str, Any]: ...

    def apply(self, view: dict[str, Any], event: Any) -> dict[str, Any]: ...


def apply_rows(projection: Projection, row: dict[str, Any] | None, events: Sequence[Any]) -> dict[str, Any]:
    """Several events of one row in order; a projection may offer a faster ``apply_rows`` (derive once)."""
    fast = getattr(projection, "apply_rows", None)
    if fast is not None:
        return fast(row, events)
    for event in events:
        row = projection.apply_row(row, event)
    return row  # type: ignore[return-value]


def catch_up(
    views: dict[str, dict[str, Any]],
    events: Iterable[Any],
    projections: Sequence[Projection],
    *,
    batch_size: int = 10_000,
) -> dict[str, dict[str, Any]]:
    """Apply more events to existing views; returns new views, the given ones are left as they were.

    Untouched rows are shared between the old and the new views (rows are never
    changed in place, only replaced). Events are taken ``batch_size`` at a time and
    grouped per row, keeping each row's order, so a row's figures are derived once
    per batch rather than once per event; the result is the same as one
    ``apply_row`` per event.
    """
    out = {p.name: dict(views.get(p.name, p.initial())) for p in projections}
    stream = iter(events)
    while True:
        batch = list(islice(stream, batch_size))
        if not batch:
            return out
        for projection in projections:
            grouped: dict[str, list[Any]] = {}
            for event in batch:
                key = projection.key(event)
                if key is not None:
                    grouped.setdefault(key, []).append(event)
            view = out[projection.name]
            for key, row_events in grouped.items():
                view[key] = apply_rows(projection, view.get(key), row_events)


def rebuild(
    events: Iterable[Any], projections: Sequence[Projection], *, batch_size: int = 10_000
) -> dict[str, dict[str, Any]]:
    """Fold a whole history into fresh views: ``{projection.name: view}``."""
    return catch_up({}, events, projections, batch_size=batch_size)
