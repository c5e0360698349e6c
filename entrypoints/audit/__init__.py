"""The auditor's tools (审计): a person's full history, as-of replay, tamper evidence, printable reports.

Plain functions, for the CLI (``ledger history``, ``ledger verify``) and the HTTP
layer (auditor role only):

* :func:`history_report` (ledger, id_type, id_number, as_of=None, year=None, on=None, verify=True, views=None,
  printable=False)
  -> dict: every event with provenance and the state after it, the as-of comparison,
  the verification; JSON-ready. :func:`render_html` (report, lang="zh", reveal=False) -> str: the printable page
  (Chinese unless ``lang="en"``, Beijing time, each event's hash, a sign-off block).
* :func:`replay_as_of` (ledger, person_id, as_of, year=None, day=None) -> dict: what the
  ledger knew at an instant, against now, with the cause of each change (dates as
  ``date`` objects; :func:`jsonable` turns them into ISO text).
* :func:`verify_person` (ledger, person_id, views=None), :func:`verify_all` (ledger; one
  process unless ``workers`` is given: keep it so inside a threaded server),
  :func:`verify_digests` (ledger, channel) -> :class:`Verification` (``.clean``,
  ``.findings``, ``.as_dict()``).
* :func:`seal` (ledger, channel, through=None): the daily digests, stored and published
  (format: :mod:`entrypoints.audit.digest`); :func:`digest_channel` (system) -> the topic.
"""
from entrypoints.audit.digest import DIGEST_TOPIC, digest_channel, digest_store, fast_event_digest, seal
from entrypoints.audit.replay import history_report, jsonable, replay_as_of
from entrypoints.audit.report import render_html
from entrypoints.audit.verify import Finding, Verification, cross_check, verify_all, verify_digests, verify_person

__all__ = [
    "DIGEST_TOPIC", "Finding", "Verification", "cross_check", "digest_channel", "digest_store", "fast_event_digest",
    "history_report", "jsonable", "render_html", "replay_as_of", "seal", "verify_all", "verify_digests", "verify_person",
]
