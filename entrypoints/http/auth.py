"""Bearer tokens, roles and scopes of the HTTP API.

Tokens live in a file named by ``LEDGER_TOKENS_FILE`` (TOML or JSON, by extension). The
file holds only the SHA-256 of each token, never the token itself::

    # TOML
    [[tokens]]
    user = "wangfang"                        # who holds it; recorded as Provenance.user
    role = "grid_worker"                     # grid_worker | clerk | auditor | tax_integration | approver
    scopes = ["610902100002", "610902101"]   # see below
    sha256 = "9f86d081884c7d65..."           # hex SHA-256 of the token
    expires = "2027-06-30"                   # optional: last valid day

    // JSON
    {"tokens": [{"user": "...", "role": "...", "scopes": [...], "sha256": "..."}]}

Roles and what their scopes are:

=================  ===========================================  ====================================
role               may                                          scopes
=================  ===========================================  ====================================
``grid_worker``    read the gap list, coverage and arrears of   12-digit grid codes or 9-digit
(网格员)           their grids, and the people living there     township codes
                   (ID numbers masked)
``clerk``          issue commands and import spreadsheets for   6-digit region codes
(医保经办)         their regions; read persons, grids and
                   arrears there (full ID numbers)
``auditor``        read everything, with each person's full     none
(审计/基金监管)    event history
``tax_integration`` post tax payment records for its regions;   6-digit region codes
(税务对接)         read nothing personal
``approver``       approve or reject the changes clerks         6-digit region codes
(医保审核)         proposed in their regions (maker-checker,
                   双人复核), never their own; list them; read
                   the persons of their regions as clerks do
=================  ===========================================  ====================================

``ledger token add --user U --role R --scope S ...`` appends an entry and prints the new
token once; ``ledger token list`` shows the entries (user, role, scopes, created, revoked,
and the token id: the first 12 hex digits of the hash, never the token); ``ledger token
revoke <user or token id>`` marks entries ``revoked`` (kept, for the record).

A running server checks the file on every request (one ``stat``: size, mtime, inode) and
re-reads it when it changed, so a new token works and a revoked one is refused at once,
without a restart. The file **fails closed**: when it is deleted, unreadable or broken,
every request that needs a token is refused with 503 ``TOKENS_UNAVAILABLE`` and an error
log line ``tokens_file_unavailable``, until the file is fixed; the last good set is never
kept.

Messages of 401 and 403 answers are English with the Chinese in parentheses.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from infra.settings import setting_text
from ledger.domain.errors import DomainError
from ledger.domain.places import parse_grid_code, validate_region_code
from ledger.log import get_logger

TOKENS_FILE_ENV = "LEDGER_TOKENS_FILE"
TOKEN_ID_LENGTH = 12
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX_ANY = re.compile(r"[0-9a-f]+")


class Role(StrEnum):
    GRID_WORKER = "grid_worker"
    CLERK = "clerk"
    AUDITOR = "auditor"
    TAX_INTEGRATION = "tax_integration"
    APPROVER = "approver"


ROLE_LABELS = {
    Role.GRID_WORKER: "网格员",
    Role.CLERK: "医保经办",
    Role.AUDITOR: "审计",
    Role.TAX_INTEGRATION: "税务对接",
    Role.APPROVER: "医保审核",
}


class Unauthenticated(DomainError):
    """No usable bearer token: 401."""

    http_status = 401


class Forbidden(DomainError):
    """A valid token without the role or scope the request needs: 403."""

    http_status = 403


class TokensUnavailable(DomainError):
    """The tokens file cannot be read now: nobody is let in (fail closed), 503."""

    http_status = 503


class TokenFileError(ValueError):
    """The tokens file cannot be used; the message names the file and the entry."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's user, role and scopes."""

    user: str
    role: Role
    scopes: frozenset[str] = field(default_factory=frozenset)

    # ------------------------------------------------------------ what the role may do
    def require_role(self, *roles: Role, action: str) -> None:
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(
                "ROLE_FORBIDDEN",
                f"your role {self.role.value} may not {action}; it needs the role {allowed} "
                f"(你的角色「{ROLE_LABELS[self.role]}」无权执行此操作，需要的角色：{allowed})",
                role=self.role.value,
            )

    def has_region(self, region_code: str | None) -> bool:
        return bool(region_code) and region_code in self.scopes

    def require_region(self, region_code: str | None, *, action: str = "act") -> None:
        """Clerks (and the tax integration) act only in their own regions."""
        if self.role == Role.AUDITOR and action == "read":
            return
        if not self.has_region(region_code):
            where = region_code or "an unknown region"
            raise Forbidden(
                "SCOPE_FORBIDDEN",
                f"no access to region {where}: your token covers {self.scope_text()} "
                f"(你没有参保地 {where} 的权限；你的令牌覆盖 {self.scope_text()})",
                region_code=region_code,
            )

    def may_read_grid(self, code: str) -> bool:
        """A 12-digit grid or 9-digit township code this principal may read."""
        if self.role == Role.AUDITOR:
            return True
        if self.role == Role.CLERK:
            return code[:6] in self.scopes
        if self.role == Role.GRID_WORKER:
            return code in self.scopes or (len(code) == 12 and code[:9] in self.scopes)
        return False

    def require_grid(self, code: str) -> None:
        self.require_role(Role.GRID_WORKER, Role.CLERK, Role.AUDITOR, action="read grid lists")
        if not self.may_read_grid(code):
            kind, label = ("township", "乡镇") if len(code) == 9 else ("grid", "网格")
            raise Forbidden(
                "SCOPE_FORBIDDEN",
                f"no access to {kind} {code}: your token covers {self.scope_text()} (你没有{label} {code} 的权限；你的令牌覆盖 {self.scope_text()})",
                area_code=code,
            )

    def sees_full_id(self, region_code: str | None) -> bool:
        """Full ID numbers only for auditors and the clerks of the region (个人信息保护法)."""
        return self.role == Role.AUDITOR or (self.role in (Role.CLERK, Role.APPROVER) and self.has_region(region_code))

    def sees_contact(self, region_code: str | None, grid_code: str | None = None) -> bool:
        """Address and phone in full for those who act on them: the grid worker of the person's grid or
        township (they visit and call), and the clerks of the region. Auditors check records, they do
        not call people: masked for them, as for everyone else (个人信息保护法, 最小必要)."""
        if self.role == Role.GRID_WORKER:
            return bool(grid_code) and self.may_read_grid(str(grid_code))
        return self.role == Role.CLERK and self.has_region(region_code)

    def scope_text(self) -> str:
        return ", ".join(sorted(self.scopes)) or "nothing"


# ---------------------------------------------------------------------------- the tokens file
@dataclass(frozen=True)
class TokenEntry:
    user: str
    role: Role
    scopes: frozenset[str]
    sha256: str
    expires: date | None = None
    created: str | None = None
    revoked: str | None = None  # when it was revoked (ISO instant); the entry stays, refused
    note: str | None = None

    @property
    def token_id(self) -> str:
        """What names a token in lists and in ``revoke``: the start of its hash (not a secret)."""
        return self.sha256[:TOKEN_ID_LENGTH]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"user": self.user, "role": self.role.value, "scopes": sorted(self.scopes),
                               "sha256": self.sha256}
        for name in ("created", "revoked", "note"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        if self.expires:
            out["expires"] = self.expires.isoformat()
        return out

    def listing(self) -> dict[str, Any]:
        """The entry as ``ledger token list`` shows it: no hash beyond the id, never a token."""
        return {"token_id": self.token_id, "user": self.user, "role": self.role.value,
                "scopes": sorted(self.scopes), "created": self.created or "",
                "expires": self.expires.isoformat() if self.expires else "", "revoked": self.revoked or ""}


def check_scopes(role: Role, scopes: Iterable[str]) -> frozenset[str]:
    """Scopes of the right shape for the role (raises DomainError with the reason)."""
    out = set()
    for raw in scopes:
        scope = str(raw).strip()
        if role == Role.AUDITOR:
            raise DomainError("SCOPE_INVALID", "an auditor reads everything; give no scopes")
        if role == Role.GRID_WORKER:
            if len(scope) == 9 and scope.isdigit():
                parse_grid_code(scope + "001")  # township block in use, region well formed
            else:
                parse_grid_code(scope)
        else:
            validate_region_code(scope)
        out.add(scope)
    if not out and role != Role.AUDITOR:
        what = "grid or township codes" if role == Role.GRID_WORKER else "region codes"
        raise DomainError("SCOPE_REQUIRED", f"a {role.value} token needs at least one scope ({what})")
    return frozenset(out)


def _entry(raw: Any, where: str) -> TokenEntry:
    if not isinstance(raw, Mapping):
        raise TokenFileError(f"{where}: each token is a table with user, role, scopes and sha256")
    unknown = set(raw) - {"user", "role", "scopes", "sha256", "expires", "created", "note", "revoked"}
    if unknown:
        raise TokenFileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    user = str(raw.get("user") or "").strip()
    if not user:
        raise TokenFileError(f"{where}: 'user' is required (who holds the token)")
    try:
        role = Role(str(raw.get("role", "")))
    except ValueError:
        raise TokenFileError(f"{where}: role {raw.get('role')!r} is not one of {', '.join(r.value for r in Role)}") from None
    sha = str(raw.get("sha256") or "").lower()
    if not _HEX64.fullmatch(sha):
        raise TokenFileError(f"{where}: 'sha256' must be 64 hex characters (the SHA-256 of the token, not the token)")
    scopes = raw.get("scopes", [])
    if not isinstance(scopes, list):
        raise TokenFileError(f"{where}: 'scopes' must be a list")
    try:
        checked = check_scopes(role, scopes)
    except DomainError as e:
        raise TokenFileError(f"{where}: {e.message}") from None
    expires = raw.get("expires")
    if expires is not None and not isinstance(expires, date):
        try:
            expires = date.fromisoformat(str(expires))
        except ValueError:
            raise TokenFileError(f"{where}: 'expires' must be a date YYYY-MM-DD") from None
    # any value of "revoked" (a date, true, even false) revokes: a hand edit errs on the closed side
    text = {name: (str(raw[name]) if raw.get(name) not in (None, "") else None)
            for name in ("created", "revoked", "note")}
    return TokenEntry(user=user, role=role, scopes=checked, sha256=sha, expires=expires, **text)


def read_token_file(path: str | Path) -> list[TokenEntry]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TokenFileError(f"{path}: tokens file not found (create one with `ledger token add`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"{path}: tokens file cannot be read: {exc}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TokenFileError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'}: {exc}") from None
    raw_tokens = data.get("tokens", []) if isinstance(data, dict) else None
    if not isinstance(raw_tokens, list):
        raise TokenFileError(f"{path}: expected a list 'tokens' of token entries")
    entries = [_entry(raw, f"{path}: token {n + 1}") for n, raw in enumerate(raw_tokens)]
    seen: set[str] = set()
    for n, e in enumerate(entries):
        if e.sha256 in seen:
            raise TokenFileError(f"{path}: token {n + 1} repeats the hash of an earlier token")
        seen.add(e.sha256)
    return entries


_TOKENS_HEADER = "# Bearer tokens of the ledger HTTP API: only SHA-256 hashes, never tokens.\n"


def _toml_entry(entry: TokenEntry) -> str:
    lines = ["", "[[tokens]]", f"user = {json.dumps(entry.user, ensure_ascii=False)}",
             f'role = "{entry.role.value}"', f"scopes = {json.dumps(sorted(entry.scopes))}",
             f'sha256 = "{entry.sha256}"', f'created = "{entry.created or date.today().isoformat()}"']
    if entry.expires:
        lines.append(f'expires = "{entry.expires.isoformat()}"')
    for name in ("revoked", "note"):
        if getattr(entry, name):
            lines.append(f"{name} = {json.dumps(getattr(entry, name), ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def write_token_file(path: str | Path, entries: Iterable[TokenEntry]) -> None:
    """Replace the file with these entries, atomically (a reader sees the old or the new file, whole)."""
    path = Path(path)
    entries = list(entries)
    if path.suffix.lower() == ".json":
        text = json.dumps({"tokens": [e.as_dict() for e in entries]}, ensure_ascii=False, indent=2) + "\n"
    else:
        text = _TOKENS_HEADER + "".join(_toml_entry(e) for e in entries)
    _write_atomically(path, text)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """One writer of the tokens file at a time (``token add`` and ``token revoke`` read, then rewrite)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_atomically(path: Path, text: str) -> None:
    """A running server never reads a half-written file (which it would have to refuse: fail closed)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def revoke_tokens(path: str | Path, who: str, *, at: str | None = None) -> list[TokenEntry]:
    """Mark as revoked every live token of user ``who``, or the one token whose id starts with ``who``.

    Returns the entries revoked (raises :class:`TokenFileError` when nothing matches or an id prefix
    is ambiguous). The entries stay in the file with the instant of revocation.
    """
    with _file_lock(Path(path)):
        return _revoke(Path(path), who, at=at or datetime.now(timezone.utc).isoformat(timespec="seconds"))


def _revoke(path: Path, who: str, *, at: str) -> list[TokenEntry]:
    entries = read_token_file(path)
    key = who.strip()
    by_user = [e for e in entries if e.user == key]
    prefix = key.lower()
    by_id = [e for e in entries if len(prefix) >= 6 and _HEX_ANY.fullmatch(prefix) and e.sha256.startswith(prefix)]
    chosen = by_user or by_id
    if not chosen:
        raise TokenFileError(f"no token of user {key!r} and none whose id starts with {key!r} "
                             "(see `ledger token list`; an id needs at least 6 hex digits)")
    if not by_user and len(by_id) > 1:
        raise TokenFileError(f"token id {key!r} matches {len(by_id)} tokens; give more digits")
    live = [e for e in chosen if not e.revoked]
    if not live:
        raise TokenFileError(f"{key!r}: already revoked")
    ids = {e.sha256 for e in live}
    write_token_file(path, [replace(e, revoked=at) if e.sha256 in ids else e for e in entries])
    return [replace(e, revoked=at) for e in live]


def add_token(path: str | Path, *, user: str, role: str, scopes: Iterable[str], expires: date | None = None) -> str:
    """Append a new token's hash to the file (created if missing) and return the token, to show once."""
    path = Path(path)
    token = secrets.token_urlsafe(32)
    entry = _entry({"user": user, "role": role, "scopes": list(scopes), "sha256": token_hash(token),
                    "created": date.today().isoformat(),
                    **({"expires": expires.isoformat()} if expires else {})}, "new token")
    with _file_lock(path):
        existing = read_token_file(path) if path.exists() else []
        if any(e.sha256 == entry.sha256 for e in existing):  # pragma: no cover - 256 random bits
            raise TokenFileError("token collision; run the command again")
        if path.suffix.lower() == ".json":
            data = {"tokens": [e.as_dict() for e in existing] + [entry.as_dict()]}
            _write_atomically(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        else:  # the file as it is (its comments too) plus the new entry
            before = path.read_text(encoding="utf-8") if path.exists() else _TOKENS_HEADER
            _write_atomically(path, before + _toml_entry(entry))
    return token


class TokenStore:
    """Looks tokens up by hash; follows its file: re-read when it changes, shut when it breaks.

    Fail closed: once the file is missing, unreadable or broken, :meth:`authenticate`
    refuses everyone with ``TOKENS_UNAVAILABLE`` (503) until a good file is back; the
    previous set of tokens is dropped, so a revocation written as a broken or deleted
    file still takes effect.
    """

    def __init__(self, entries: Iterable[TokenEntry], *, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp = self._file_stamp() if path is not None else None
        self._by_hash: dict[str, TokenEntry] | None = {e.sha256: e for e in entries}
        self._problem: str | None = None

    def _file_stamp(self) -> tuple[int, int, int, int] | None:
        """What tells a changed file: inode, device, size, mtime (None: the file cannot be stat-ed)."""
        assert self._path is not None
        try:
            st = self._path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)

    @classmethod
    def from_file(cls, path: str | Path) -> TokenStore:
        path = Path(path)
        return cls(read_token_file(path), path=path)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TokenStore:
        path = setting_text(TOKENS_FILE_ENV, env)
        if not path:
            raise TokenFileError(f"{TOKENS_FILE_ENV} is not set: name the tokens file (create one with `ledger token add`)")
        return cls.from_file(path)

    @classmethod
    def from_tokens(cls, tokens: Mapping[str, tuple[str, str, Iterable[str]]]) -> TokenStore:
        """For tests and embedding: ``{token: (user, role, scopes)}``."""
        return cls([_entry({"user": u, "role": r, "scopes": list(s), "sha256": token_hash(t)}, f"token of {u}")
                    for t, (u, r, s) in tokens.items()])

    def _reload_if_changed(self) -> None:
        """One ``stat`` per request (microseconds); the file is parsed again only when it changed."""
        if self._path is None:
            return
        stamp = self._file_stamp()
        if stamp == self._stamp and stamp is not None:
            return
        with self._lock:
            stamp = self._file_stamp()
            if stamp == self._stamp and stamp is not None:
                return

            log = get_logger("entrypoints.http.auth")
            try:
                if stamp is None:
                    raise TokenFileError(f"{self._path}: tokens file not found or not readable")
                entries = read_token_file(self._path)
            except (TokenFileError, OSError, UnicodeDecodeError) as e:
                if self._by_hash is not None or self._problem is None:
                    # Loud, once per breakage: from now on every request is refused until the file is fixed.
                    log.error("tokens_file_unavailable", path=str(self._path), problem=str(e),
                              effect="every request needing a token is refused (503 TOKENS_UNAVAILABLE)")
                self._by_hash = None
                self._problem = str(e)
                self._stamp = stamp
                return
            recovered = self._by_hash is None
            self._by_hash = {e.sha256: e for e in entries}
            self._problem = None
            self._stamp = stamp
            log.info("tokens_file_reloaded", path=str(self._path), tokens=len(entries),
                     revoked=sum(1 for e in entries if e.revoked), recovered=recovered)

    def authenticate(self, authorization: str | None, *, today: date | None = None) -> Principal:
        """The principal of an ``Authorization`` header value, or :class:`Unauthenticated`
        (:class:`TokensUnavailable` while the tokens file cannot be used)."""
        if not authorization:
            raise Unauthenticated(
                "TOKEN_MISSING", "send your token as 'Authorization: Bearer <token>' (缺少访问令牌：请在请求头加上 Authorization: Bearer <令牌>)")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            raise Unauthenticated(
                "TOKEN_MALFORMED", "the Authorization header must read 'Bearer <token>' (访问令牌格式不正确：请求头应为 Authorization: Bearer <令牌>)")
        self._reload_if_changed()
        by_hash = self._by_hash
        if by_hash is None:
            raise TokensUnavailable(
                "TOKENS_UNAVAILABLE",
                "令牌文件缺失或无法读取，暂时拒绝所有请求；请管理员检查 LEDGER_TOKENS_FILE "
                "(the tokens file is missing, unreadable or broken: every request is refused until it is fixed)")
        entry = by_hash.get(token_hash(token))
        if entry is None:
            raise Unauthenticated("TOKEN_UNKNOWN", "this token is not valid; ask for a new one (访问令牌无效，请向管理员申请新令牌)")
        if entry.revoked:
            raise Unauthenticated("TOKEN_REVOKED", f"this token was revoked on {entry.revoked}; ask for a new one "
                                                   f"(访问令牌已于 {entry.revoked} 被吊销，请向管理员申请新令牌)")
        if entry.expires is not None and (today or date.today()) > entry.expires:
            raise Unauthenticated(
                "TOKEN_EXPIRED", f"this token expired on {entry.expires.isoformat()}; ask for a new one "
                f"(访问令牌已于 {entry.expires.isoformat()} 过期，请向管理员申请新令牌)")
        return Principal(user=entry.user, role=entry.role, scopes=entry.scopes)
