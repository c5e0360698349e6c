"""The ledger's fast stored-event decoding (batch loader, publisher) gives exactly the library mapper's events."""
from __future__ import annotations

import copy

import pytest
from entrypoints.wiring import bootstrap
from infra.settings import Settings
from entrypoints.simulation.county import generate_county
from infra.event_store.stored_events import is_plain_json_mapper, row_decoder


def _columns(s):
    return s.originator_id, s.originator_version, s.topic, s.state


@pytest.fixture
def county():
    system = bootstrap(Settings(persistence="memory", id_key=b"stored-events"))
    try:
        generate_county(3, 120).apply_to(system.ledger)
        yield system
    finally:
        system.close()


def test_fast_decoding_gives_the_library_events_field_by_field(county):
    mapper = county.ledger.mapper
    assert is_plain_json_mapper(mapper)  # the fast way is taken
    decode = row_decoder(mapper)
    stored = county.ledger.recorder.select_notifications(1, 1_000_000)
    assert len(stored) > 500
    for s in stored:
        mine, theirs = decode(*_columns(s)), mapper.to_domain_event(s)
        assert type(mine) is type(theirs)
        assert list(vars(mine).items()) == list(vars(theirs).items())  # same order and values
        assert [type(v) for v in vars(mine).values()] == [type(v) for v in vars(theirs).values()]


def test_an_unreadable_state_goes_the_library_way(county):
    mapper = county.ledger.mapper
    s = county.ledger.recorder.select_notifications(1, 1)[0]
    odd = s.state.replace(b"{", b'{"x":NaN,', 1)  # json reads NaN, orjson does not
    event = row_decoder(mapper)(s.originator_id, s.originator_version, s.topic, odd)
    assert vars(event) == vars(mapper.to_domain_event(type(s)(**{**vars(s), "state": odd})))
    assert event.x != event.x


def test_an_unknown_transcoding_raises_the_library_error(county):
    mapper = county.ledger.mapper
    s = county.ledger.recorder.select_notifications(1, 1)[0]
    odd = s.state.replace(b"{", b'{"x":{"_type_":"nope","_data_":1},', 1)
    with pytest.raises(Exception) as theirs:
        mapper.to_domain_event(type(s)(**{**vars(s), "state": odd}))
    with pytest.raises(type(theirs.value)) as mine:
        row_decoder(mapper)(s.originator_id, s.originator_version, s.topic, odd)
    assert str(mine.value) == str(theirs.value)


def test_a_mapper_with_a_compressor_is_left_to_the_library(county):
    class Compressor:
        def compress(self, data):
            return data

        def decompress(self, data):
            return data

    mapper = copy.copy(county.ledger.mapper)
    mapper.compressor = Compressor()
    assert not is_plain_json_mapper(mapper)
    s = county.ledger.recorder.select_notifications(1, 1)[0]
    assert vars(row_decoder(mapper)(*_columns(s))) == vars(mapper.to_domain_event(s))


def test_an_encrypted_store_is_decoded_the_fast_way_to_the_same_events(county):
    """Encryption at rest is on by default: the orjson path decrypts with the mapper's own cipher first."""
    from eventsourcing.utils import Environment

    from events.pii import new_key
    from events.cipher import LedgerCipher

    plain = county.ledger.mapper
    mapper = copy.copy(plain)
    mapper.cipher = LedgerCipher(Environment(env={"CIPHER_KEY": new_key()}))
    assert is_plain_json_mapper(mapper)  # the fast way is taken
    for s in county.ledger.recorder.select_notifications(1, 50):
        encrypted = mapper.to_stored_event(plain.to_domain_event(s))
        # No clear JSON left (the first byte of a ciphertext may happen to be "{": 1 in 256).
        assert encrypted.state != s.state and b'"originator_topic"' not in encrypted.state
        assert vars(row_decoder(mapper)(*_columns(encrypted))) == vars(plain.to_domain_event(s))
    damaged = encrypted.state[:-1] + bytes([encrypted.state[-1] ^ 1])
    with pytest.raises(ValueError, match="damaged"):
        row_decoder(mapper)(encrypted.originator_id, encrypted.originator_version, encrypted.topic, damaged)
