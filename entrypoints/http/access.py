"""Who may read whom (数据访问权限): the rules the HTTP API and the ``ledger`` command share.

A principal (a bearer token's user, role and scopes, :mod:`entrypoints.http.auth`) reads a
person when it is an auditor, a clerk of a region the person is enrolled in (not as a
duplicate of another region's enrollment) or lives in,
or the grid worker of a grid the person lives or is enrolled in; the full ID number is
shown to those clerks and to auditors only. Arrears lists follow the same scopes.

On the command line the principal comes from ``LEDGER_TOKEN`` (the token ``ledger token
add`` printed) checked against the tokens file ``LEDGER_TOKENS_FILE``: the commands that
show personal data (``person``, ``entitlement``, ``gaps``, ``arrears``, ``history``,
``dlq``) and those that write as someone (``clerk ...``, ``import``, ``dlq resubmit``,
``reconcile explain``) refuse to run without one, with the same codes as the API
(``TOKEN_MISSING``, ``TOKEN_REVOKED``, ``ROLE_FORBIDDEN``, ``SCOPE_FORBIDDEN``, ...).
Dead letters are scoped like persons: a clerk sees those of their regions, an auditor all
(:func:`consumers.dead_letters.visible_to`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from infra.settings import setting_text
from ledger.domain.errors import DomainError
from ledger.domain.history import Enrollment
from ledger.domain.person import Person
from entrypoints.http.auth import TOKENS_FILE_ENV, Forbidden, Principal, Role, TokenFileError, TokenStore, Unauthenticated
from projections.arrears import sort_arrears

TOKEN_ENV = "LEDGER_TOKEN"


def acting_region(person: Person) -> str | None:
    """The region a command on this person belongs to: where they are enrolled now (or were last)."""
    current = person.active_enrollment
    if current is not None:
        return current.region_code
    if person.enrollments:
        return person.enrollments[-1].region_code
    return person.household_grid[:6] if person.household_grid else None


def person_regions(person: Person) -> set[str]:
    """The regions whose clerks read this person: where the enrollment in force is (or the last one was),
    and where they live.

    An enrollment flagged as a duplicate in another region than the one in force does not count:
    such a duplicate (recorded before ``ENROLLED_ELSEWHERE`` refused them) must not open the
    person's full record to the second region's clerks (issue 17, item 6).
    """
    regions = {e.region_code for e in _counted_enrollments(person)}
    regions.add(acting_region(person) or "")
    if person.household_grid:
        regions.add(person.household_grid[:6])
    regions.discard("")
    return regions


def _counted_enrollments(person: Person) -> list[Enrollment]:
    """Active enrollments that open the person to a region: not a duplicate of another region's."""
    current = person.active_enrollment
    return [e for e in person.active_enrollments
            if not e.duplicate_of or (current is not None and e.region_code == current.region_code)]


def incoming_transfer_regions(person: Person) -> set[str]:
    """Regions a transfer was requested at or sent to and is awaited in (待转入): their clerks may read
    the person before enrolling them, to complete the transfer-in. Only while the transfer is open."""
    return {t.counterpart_region for t in person.transfers.values()
            if t.direction in ("OUT", "REQUEST") and t.status in ("REQUESTED", "OUT_COMPLETED")}


def person_grids(person: Person) -> set[str]:
    grids = {e.grid_code for e in _counted_enrollments(person) if e.grid_code}
    if person.household_grid:
        grids.add(person.household_grid)
    return grids


def person_access(who: Principal, person: Person) -> bool:
    """Whether ``who`` may see the person's full ID number; :class:`Forbidden` when not the person at all."""
    who.require_role(Role.CLERK, Role.AUDITOR, Role.GRID_WORKER, Role.APPROVER, action="read persons")
    if who.role == Role.AUDITOR:
        return True
    if who.role in (Role.CLERK, Role.APPROVER):  # an approver checks the records a change is about, as a clerk reads them
        regions = person_regions(person)
        if regions & who.scopes or incoming_transfer_regions(person) & who.scopes:
            return True
        where = ", ".join(sorted(regions)) or "no region"
        raise Forbidden("SCOPE_FORBIDDEN", f"no access to this person: they belong to region {where}, your token "
                        f"covers {who.scope_text()} (你没有该参保人所在参保地 {where} 的权限；你的令牌覆盖 {who.scope_text()})")
    if any(who.may_read_grid(g) for g in person_grids(person)):
        return False
    raise Forbidden("SCOPE_FORBIDDEN", f"no access to this person: they do not live in your grids "
                    f"{who.scope_text()} (该参保人不在你负责的网格 {who.scope_text()} 内)")


def check_arrears_read(who: Principal, *, region: str | None, grid: str | None, grid_option: str = "?grid=") -> None:
    """May ``who`` read the arrears of this region / grid (both None: everything the role may see)?"""
    who.require_role(Role.GRID_WORKER, Role.CLERK, Role.AUDITOR, action="read arrears")
    if grid is not None:
        who.require_grid(grid)
    if region is not None and who.role == Role.CLERK:
        who.require_region(region, action="read")
    if who.role == Role.GRID_WORKER and grid is None:
        raise Forbidden("SCOPE_FORBIDDEN", f"grid workers ask for one of their grids: add {grid_option} one of "
                        f"{who.scope_text()} (网格员须指定自己负责的网格：加上 {grid_option} 及以下之一 {who.scope_text()})")


def clerk_arrears(who: Principal, fetch: Callable[[str], list[dict[str, Any]]], *, sort: str,
                  limit: int | None) -> list[dict[str, Any]]:
    """A clerk's arrears list when they name neither region nor grid: all their regions', merged and sorted."""
    rows = sort_arrears([r for own in sorted(who.scopes) for r in fetch(own)], sort)
    return rows[:limit] if limit else rows


def cli_principal(env: Mapping[str, str] | None = None, *,
                  purpose: str = "this command shows personal data") -> Principal:
    """The principal of the token in ``LEDGER_TOKEN``, checked against ``LEDGER_TOKENS_FILE``.

    Raises :class:`Unauthenticated` (``TOKEN_MISSING``, ``TOKEN_UNKNOWN``, ``TOKEN_EXPIRED``) or a
    :class:`DomainError` ``TOKENS_FILE_INVALID`` naming what to fix.
    """
    token = setting_text(TOKEN_ENV, env).strip()
    if not token:
        raise Unauthenticated(
            "TOKEN_MISSING", f"{purpose}: set {TOKEN_ENV} to your token (a clerk or auditor "
                             f"issues one with `ledger token add`) "
                             f"(缺少访问令牌：请将环境变量 {TOKEN_ENV} 设为你的令牌，令牌由经办员或稽核员用 ledger token add 签发)")
    try:
        store = TokenStore.from_env(env)
    except TokenFileError as e:
        raise DomainError("TOKENS_FILE_INVALID", f"{e} ({TOKENS_FILE_ENV} names the tokens file)") from None
    return store.authenticate(f"Bearer {token}")


__all__ = ["TOKEN_ENV", "acting_region", "check_arrears_read", "clerk_arrears", "cli_principal", "person_access", "person_grids",
           "person_regions"]
