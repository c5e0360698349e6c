"""The log source's fast event decoding gives exactly the events the library's mapper gives."""
from __future__ import annotations

from entrypoints.wiring import bootstrap
from infra.settings import Settings
from entrypoints.simulation.county import generate_county
from projections.sources import event_decoder


def test_fast_decoding_gives_the_library_events_field_by_field():
    system = bootstrap(Settings(persistence="memory", id_key=b"decoder"))
    try:
        generate_county(3, 120).apply_to(system.ledger)
        mapper = system.ledger.mapper
        fast = event_decoder(mapper)
        assert fast is not mapper.to_domain_event  # the plain JSON mapper: the fast way is taken
        stored = system.ledger.recorder.select_notifications(1, 1_000_000)
        assert len(stored) > 500
        for s in stored:
            mine, theirs = fast(s), mapper.to_domain_event(s)
            assert type(mine) is type(theirs)
            assert list(vars(mine).items()) == list(vars(theirs).items())  # same order and values
            assert [type(v) for v in vars(mine).values()] == [type(v) for v in vars(theirs).values()]
    finally:
        system.close()


def test_an_unreadable_state_goes_the_library_way():
    system = bootstrap(Settings(persistence="memory", id_key=b"decoder-slow"))
    try:
        generate_county(3, 20).apply_to(system.ledger)
        mapper = system.ledger.mapper
        s = system.ledger.recorder.select_notifications(1, 1)[0]
        odd = type(s)(**{**vars(s), "state": s.state.replace(b"{", b'{"x":NaN,', 1)})  # json reads NaN, orjson not
        event = event_decoder(mapper)(odd)
        assert vars(event) == vars(mapper.to_domain_event(odd)) and event.x != event.x
    finally:
        system.close()
