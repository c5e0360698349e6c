"""The view rows' JSON text reads back exactly: dates, instants, tuples, int keys, and text that looks like them."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from ledger.domain.history import history_from_plain, history_to_plain
from projections.row_codec import dumps_row, loads_row
from tests.unit.projection_support import arrears_view, entitlement_view, ledger  # noqa: F401  (fixture)
from tests.unit.test_projection_runner import history  # noqa: F401  (fixture)

CST = timezone(timedelta(hours=8))


def test_rows_of_a_busy_ledger_read_back_equal(ledger, history):
    for view in (entitlement_view(ledger), arrears_view(ledger)):
        for row in view.values():
            stored = {**row, "history": history_to_plain(row["history"])}  # the history as the store writes it
            back = loads_row(dumps_row(stored))
            assert back == stored and history_from_plain(back["history"]) == row["history"]


@pytest.mark.parametrize("value", [
    {"on": date(2025, 1, 1), "at": datetime(2025, 1, 1, 9, 30, tzinfo=timezone.utc),
     "cst": datetime(2025, 1, 1, 9, 30, 0, 123456, tzinfo=CST), "naive": datetime(2025, 1, 1, 9, 30)},
    {"text that looks like a date": "2025-01-01", "like an instant": "2025-01-01T09:30:00+00:00",
     "tilde": "~2025-01-01", "tilde only": "~", "empty": "", "period": "2025-03", "year": "2025",
     "not a date": "2025-13-45", "chinese": "王芳 汉滨区"},
    {2025: {"months": {"2025-03": 1}}, "2025": "str key", "~k": "tilde key", "~~k": 2, "~2024": None},
    {"periods": [(date(2025, 1, 1), date(2025, 12, 31))], "nested": ((1, (2, [3, (4,)])), []), "empty": ()},
    {"~t": [1, 2], "t": (1,), "bools": [True, False, None, 0, 1], "float": 1.5},
    ["2025-01-01", date(2025, 1, 1), ("~t", "~")],
    "2025-01-01",
    date(2025, 1, 1),
])
def test_awkward_values_read_back_equal_with_their_types(value):
    text = dumps_row(value)
    json.loads(text)  # it is JSON
    back = loads_row(text)
    assert back == value
    assert repr(back) == repr(value)  # same types too: tuples stay tuples, dates stay dates, keys keep their order


def test_dates_are_iso_text_in_the_json():
    text = dumps_row({"on": date(2025, 3, 1), "years": {2025: (date(2025, 1, 1), 1)}})
    assert json.loads(text) == {"on": "2025-03-01", "years": {"~2025": {"~t": ["2025-01-01", 1]}}}


def test_what_a_row_cannot_hold_is_refused():
    with pytest.raises(TypeError):
        dumps_row({"s": {1, 2}})
    with pytest.raises(TypeError):
        dumps_row({date(2025, 1, 1): 1})


def test_the_stored_history_is_the_pure_views_history_encoded_alone(ledger, history):
    from projections.projection_runner import ProjectionRunner
    from projections.sources import NotificationLogSource
    from projections.store import SQLiteViewStore, due_records

    store = SQLiteViewStore(":memory:")
    runner = ProjectionRunner(store, NotificationLogSource(ledger), ledger.policies)
    changes, _ = runner.person_changes(history)
    assert changes
    entitlement, arrears = entitlement_view(ledger), arrears_view(ledger)
    for change in changes:
        row = entitlement[change.person_id]
        assert change.history == (row["history"].version, dumps_row(history_to_plain(row["history"])))
        assert arrears[change.person_id]["history"] == row["history"]
        assert change.dues == due_records(change.person_id, arrears[change.person_id]["dues"])


@pytest.mark.parametrize("items", [[], ["a"], ["6af8e5d7-f89b-88e4-adac-ea45bf935f05"] * 3,
                                   ['quote " and \\ backslash', "赵", "\n\x01\u2028"], [1, "a", None]])
def test_spell_sources_text_is_what_json_dumps_writes(items):
    import json

    from projections.store import _json_texts

    assert _json_texts(items) == json.dumps(items)
