"""Hostile input on the maker-checker page (/web/changes) in a real browser: a clerk (or whoever holds a clerk's
token) writes markup into a merge's reason, hoping the approver's page runs it. The page shows it as text and
runs nothing; the content-security policy would refuse an injected script anyway. The server and browser are
those of tests/integration/test_web_chromium_changes.py."""
from __future__ import annotations

import pytest

from tests.integration.test_web_chromium import browser, chromium, tab  # noqa: F401  (fixtures)
from tests.integration.test_web_chromium_changes import card, open_page, propose_merge, site  # noqa: F401

pytestmark = pytest.mark.integration

MARKUP = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def test_markup_in_a_merge_reason_is_shown_as_text_and_runs_nothing(site, tab, hostile):
    propose_merge(site["base"], site["numbers"][0], site["numbers"][1], "X-1", reason=MARKUP)
    open_page(site, tab, "tok-approver")
    shown = card(tab, "X-1")
    injected = tab.js("document.querySelectorAll('#change-list img, #change-list script').length")
    pwned = tab.js("window.__pwned || 0")
    hostile.attempt("markup in a merge reason on the approver's page", crashed=bool(pwned or injected))
    assert shown is not None and MARKUP in shown["text"] and injected == 0 and pwned == 0
