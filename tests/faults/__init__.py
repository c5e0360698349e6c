"""The fault-injection suite: the synthetic county through real processes on real services, while things break.

    .venv/bin/python -m tests.faults [--size small|large] [--seed N] [--keep-logs]

It starts a private Kafka broker and PostgreSQL server (its own state dir under a temp
dir and its own free ports: it restarts them, so it never uses the shared dev stack),
and runs the production processes as subprocesses: ``ledger consume tax|status|residents``,
``ledger publish``, and two projection runners (``ledger project --follow`` from the
ledger's notification log, and from ``ledger.events.v1`` into views of their own). It
feeds the county's timeline (:mod:`entrypoints.simulation`) -- feed records onto their topics
as Avro, clerk actions through the application service, in timeline order -- and
meanwhile, at seeded-random points:

* SIGKILLs every one of those processes (and starts it again at once);
* SIGKILLs ``ledger publish`` at its commit points: just after its Kafka commit (before the
  tracking copy of its position) and just before it (the batch and its position sent);
* stops and restarts the Kafka broker while records are being produced and consumed;
* crashes PostgreSQL (``pg_ctl stop -m immediate``) and starts it again mid-stream;
* fills the tax consumer's input with a burst of resent records far larger than its batch.

A process that exits by itself (e.g. a projection runner that loses its database) is
restarted too, and the report says so. At the end the ledger, the published topic and
every view must equal a reference computed from the inputs alone
(:mod:`tests.faults.checks`), and ``ledger.events.v1`` read with ``read_committed`` must
hold no event twice (``ledger.events.v1 duplicates (read_committed): 0``). It prints
what it did and what it found and exits 1 on any
mismatch, 3 when the pipeline did not converge in time.

``bash infra/dev.sh test`` runs it at the small size after pytest (CI's gate);
``--size large`` is a county ten times larger with more faults.
"""
