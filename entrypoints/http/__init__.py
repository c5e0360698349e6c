"""The ledger's HTTP API (FastAPI): clerk commands, the tax feed, batch import, person and grid reads.

* :mod:`entrypoints.http.app` -- ``create_app(system, tokens)``: the app, request ids, error bodies;
* :mod:`entrypoints.http.auth` -- bearer tokens (hashes in a TOML/JSON file), roles and scopes;
* :mod:`entrypoints.http.gate` -- the entrance gate: token before body, body limits, busy slots;
* :mod:`infra.limits` -- every limit on requests and uploaded or fed files, in one table;
* :mod:`entrypoints.http.models` -- request bodies (money in integer fen, ISO dates, no unknown fields);
* ``routes_*`` -- one module per route group;
* :mod:`consumers.spreadsheets` -- the agencies' registration spreadsheet (CSV / XLSX), also
  behind ``ledger import``;
* :mod:`entrypoints.http.read_model` -- the read side the routes ask (entitlement, gaps, arrears).

Every route goes through the same :class:`ledger.application.Ledger` the feeds use; the HTTP
layer only authenticates, validates, scopes and translates errors.
"""
