"""Read models (projections) of the ledger: pure folds of person events into plain-data views.

* :mod:`ledger.domain.history` -- the per-person fold every view starts from (idempotent);
* :mod:`projections.entitlement` -- 待遇资格: coverage per person and year, ``covered_on``;
* :mod:`projections.arrears` -- 欠费: dues past their due date, late fees;
* :mod:`projections.coverage_gaps` -- 应保尽保: who in a grid is not covered and why, rates;
* :mod:`projections.in_memory` -- ``rebuild`` / ``catch_up`` over any event iterable;
* :mod:`projections.gap_spells` -- the gap-list line as a step function of the day (pure).

Where events come from (Kafka, the local notification log) and where views are
stored (PostgreSQL, SQLite) are adapters around these functions:

* :mod:`projections.sources` -- the notification log and Kafka ``ledger.events.v1``;
* :mod:`projections.store` (with :mod:`projections.row_codec`) -- the view tables;
* :mod:`projections.projection_runner` -- the runner: source -> pure fold -> store, rebuild;
* :mod:`projections.queries` -- what the CLI, the API and the grid workers ask;
* :mod:`projections.factory` -- which store and source a deployment uses.
"""
