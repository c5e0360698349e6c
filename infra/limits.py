"""Every limit the entrances put on what a caller sends, in one table (请求与文件的上限).

These are technical limits of the service, not insurance policy, so they live here and not
in the policy tables. Each figure is far above what an honest request or file needs and
far below what would hurt the server; a request over one is refused with a stable code
before the work it would cause is done.

HTTP (enforced by :mod:`entrypoints.http.gate`, before the route runs):

=============================  ============  ==============================================
what                           limit         over it
=============================  ============  ==============================================
token                          checked       401 before one byte of the body is read
                               first         (every route that needs a token)
JSON command body (every       64 KiB        413 ``BODY_TOO_LARGE``: the largest real command
POST with a JSON body)                       is under 2 KiB
JSON keys in one body          256           422 ``BODY_TOO_COMPLEX``: the widest body has
                                             ~20 fields and no nested objects
JSON nesting depth             8             422 ``BODY_TOO_COMPLEX``
``POST /imports`` body         10 MiB        413 ``BODY_TOO_LARGE`` (~100,000 CSV rows)
any other route's body         64 KiB        413 ``BODY_TOO_LARGE`` (they take none)
problems listed in a 422       20            the rest counted in ``details.total``,
                                             ``details.truncated: true``
imports running at once        2             a request waits up to 2 s for a slot (body
exports running at once        4             unread), then 503 ``SERVER_BUSY`` + ``Retry-After``
                                             (a deliberate refusal: the work is not started)
time to send the body          30 s          408 ``BODY_TOO_SLOW``
=============================  ============  ==============================================

Spreadsheets and feed files (``POST /imports``, ``ledger import``, ``ledger feed``; enforced
by :func:`consumers.spreadsheets.read_sheet`, the one reader all three use):

=============================  ============  ==============================================
file size (CSV or XLSX)        64 MiB        413 ``FILE_TOO_LARGE``
XLSX: members of the zip       256           413 ``FILE_BOMB`` (a workbook has ~10-30)
XLSX: inflated size, in all    128 MiB       413 ``FILE_BOMB``, from the zip's directory,
                                             before anything is inflated
XLSX: inflation ratio          100           413 ``FILE_BOMB`` (a member above 1 MiB inflated,
                                             or the whole archive; real sheets are 5-30)
rows: registration import      100,000       413 ``FILE_TOO_MANY_ROWS``, non-blank rows, counted
                                             while reading
rows: feed file                1,000,000     413 ``FILE_TOO_MANY_ROWS``
lines, blank ones included     2 x rows + 1  413 ``FILE_TOO_MANY_ROWS`` (a sheet whose last row
                                             is row 1,048,576 is two bytes longer)
columns (header)               64            413 ``FILE_TOO_MANY_COLUMNS``; cells past them
                                             are not read (an XLSX can declare 16,384)
one CSV line                   64 Ki chars   413 ``FILE_LINE_TOO_LONG``
reading time                   60 s          422 ``FILE_TOO_SLOW``, checked while reading rows
=============================  ============  ==============================================
"""
from __future__ import annotations

from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB

# ---------------------------------------------------------------------------- HTTP
#: Body limit of every route not named in ROUTE_BODY_LIMITS (JSON commands; reads take no body).
DEFAULT_BODY_LIMIT = 64 * KIB
#: Route path (as declared, with its ``{parameters}``) -> body limit in bytes.
ROUTE_BODY_LIMITS: dict[str, int] = {
    "/imports": 10 * MIB,
}
JSON_MAX_KEYS = 256
JSON_MAX_DEPTH = 8
#: Problems listed in one 422 answer; the total is given beside them.
MAX_REPORTED_ERRORS = 20

#: Route path -> the kind of heavy work it does; each kind has a number of slots.
HEAVY_ROUTES: dict[str, str] = {
    "/imports": "import",
    "/grids/{code}/gaps.csv": "export",
    "/grids/{code}/gaps.xlsx": "export",
}
HEAVY_SLOTS: dict[str, int] = {"import": 2, "export": 4}
#: Seconds a heavy request waits for a slot (its body unread) before SERVER_BUSY.
BUSY_WAIT_SECONDS = 2.0
#: Seconds a caller refused with SERVER_BUSY is asked to wait (``Retry-After``).
BUSY_RETRY_AFTER_SECONDS = 5
#: Seconds from the request's headers to the last byte of its body (a trickled upload must not hold a slot).
BODY_READ_SECONDS = 30.0


def body_limit(route_path: str | None) -> int:
    return ROUTE_BODY_LIMITS.get(route_path or "", DEFAULT_BODY_LIMIT)


# ---------------------------------------------------------------------------- files
@dataclass(frozen=True)
class SheetLimits:
    """Limits of one spreadsheet or feed file (CSV or XLSX)."""

    max_bytes: int = 64 * MIB
    max_rows: int = 100_000
    #: Columns read; a wider header is refused (the widest contract has ~20 columns).
    max_columns: int = 64
    #: Characters in one CSV line (a line of a million commas is a million cells).
    max_line_chars: int = 64 * KIB
    xlsx_max_members: int = 256
    xlsx_max_inflated: int = 128 * MIB
    xlsx_max_ratio: int = 100
    #: The ratio is judged on members at least this large inflated (tiny members compress oddly).
    xlsx_ratio_from: int = 1 * MIB
    max_seconds: float = 60.0

    @property
    def max_lines(self) -> int:
        """Lines (rows) read including blank ones: an XLSX row number costs nothing, yet openpyxl
        hands every row up to it over, one by one."""
        return 2 * self.max_rows + 1


#: The agencies' registration sheet (``POST /imports``, ``ledger import``).
IMPORT_SHEET = SheetLimits(max_rows=100_000)
#: An integrator's export fed to a topic (``ledger feed``): a month of a county's tax records can be large.
FEED_SHEET = SheetLimits(max_rows=1_000_000)
