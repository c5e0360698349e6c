"""Event contracts and codecs (事件契约).

* :mod:`events.codec`: Avro single-object encoding and the registry of ``schemas/``;
* :mod:`events.ledger_events`: ``Person`` events <-> ``cn.medins.ledger.v1`` records;
* :mod:`events.inbound`: tax and registry feed records <-> :mod:`ledger.inbound_records`;
* :mod:`events.make_fixtures`: the compatibility fixtures under ``tests/fixtures/avro``.
"""
