"""A late-fee line's arithmetic and status in the reader's language (``ledger fees``, the demo report).

One phrasing for every reader: the arithmetic is :func:`entrypoints.http.web.ledger_exports.fee_arithmetic`
(the files and the API's ``arithmetic`` say it the same way; in Chinese the domain's own sentence), the
status :func:`entrypoints.http.web.labels.fee_status`.
"""
from __future__ import annotations

from typing import Any, Mapping

from entrypoints import catalogue
from entrypoints.http.web import labels
from entrypoints.http.web.ledger_exports import fee_arithmetic


def fee_status(row: Mapping[str, Any], lang: str = catalogue.DEFAULT_LANG) -> str:
    """A fee row's state (``OWED``, ``PART_PAID``, ``PAID``, ``WAIVED``) in words."""
    return labels.fee_status(row["fee_status"], lang)


__all__ = ["fee_arithmetic", "fee_status"]
