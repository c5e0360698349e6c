"""The auditor's as-of replay on the real PostgreSQL: the same story and assertions as the unit tests.

A resident pays, is found to be an orphan (late full subsidy, re-assessed), is
refunded and transfers out; what the ledger knew at three recorded instants must
come back from PostgreSQL exactly as from memory. Each test gets a schema of its own.
"""
from __future__ import annotations


import pytest

from tests.unit import test_audit_history as story_tests

pytestmark = pytest.mark.integration


@pytest.fixture()
def ledger(fresh_pg_ledger):
    return fresh_pg_ledger


story = story_tests.story
test_as_of_three_instants_gives_what_the_ledger_knew_then = story_tests.test_as_of_three_instants_gives_what_the_ledger_knew_then
test_each_change_since_an_instant_names_the_events_that_caused_it = (
    story_tests.test_each_change_since_an_instant_names_the_events_that_caused_it)
test_covered_on_a_day_as_known_then_and_now = story_tests.test_covered_on_a_day_as_known_then_and_now
