"""Reconciliation (对账) of the tax bureau's daily statements against what the ledger recorded.

A read model over two inputs: the ledger's payment events (the *ledger side*, one row
per voucher) and the statements of ``tax.statements.v1`` (header + lines). The
comparison is pure; where events and statements come from and where the rows live are
adapters around it, as for the other views.

=================================  ==============================================================
:mod:`.model`                      scope, header, line, ledger row, discrepancy classes and states;
                                   which date a statement is about (the payment date) and why
:mod:`.intake`                     a statement record's bytes to a checked row or an error code
:mod:`.ledger_side`                payment events -> ledger rows (pure projection)
:mod:`.compare`                    the classification and the tie-out (pure)
:mod:`.lifecycle`                  OPEN / EXPLAINED / RESOLVED and the history (pure)
:mod:`.store`                      the ``recon_*`` tables on PostgreSQL or SQLite
:mod:`.service`                    :class:`Reconciler`: ingest, compare, resolve, time limit, explain
:mod:`.runner`                     the ledger side kept up to date from the log or Kafka
:mod:`.results`                    results to ``reconciliation.results.v1`` (JSON, from an outbox)
:mod:`.reports`                    plain functions for the CLI and HTTP: show, open, summary, export
:mod:`.wiring`                     stores and processes built from the settings
:mod:`.cli`                        ``ledger reconcile ...``
=================================  ==============================================================

The Kafka consumer of the statements is :mod:`reconciliation.consumer`.
"""
