"""The policy book (政策参数库): loads every region-year policy table once and checks it.

Layout of the tables directory::

    tables/national/<year>.toml      national figures (NHSA notices, 国办发 rules, laws)
    tables/ankang/<year>.toml        Ankang-wide defaults (市级统筹), extends national
    tables/<region_code>/<year>.toml one table per region and coverage year

A file may declare ``extends = "<dir>/<year>"``; the base is deep-merged under it
(tables merge key by key, any other value is replaced whole), so thirty region files
do not repeat the same numbers. Only directories named by a 6-digit region code hold
tables; the others are bases. Metadata (``version``, ``status``, ``source``) is never
inherited: each region-year file states its own.

A broken file is a deployment problem, not user input: :class:`PolicyFileError`
(a ``ValueError``) names the file that supplied the bad value and the field.
"""
from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from datetime import date
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ledger.domain.errors import DomainError, NotFound
from ledger.domain.places import validate_region_code
from ledger.policy.model import (
    SUBSIDY_CATEGORIES,
    ApprovalPolicy,
    WAITING_EXEMPTIONS,
    ContinuityIncentive,
    EmployeePolicy,
    FigureSource,
    PolicyTable,
    ResidentPolicy,
    StatusRule,
    SubsidyKind,
    SubsidyRule,
    ValueLimits,
    TransferPolicy,
    WaitingRules,
)

DEFAULT_TABLES_DIR = Path(__file__).resolve().parent / "tables"

_META_KEYS = ("extends", "version", "status", "source")
#: "provisional": a table whose year has no published figures yet (e.g. next year before its notice),
#: carried from the nearest sourced year; its provisional figures are listed in ``[provenance]``.
_STATUSES = ("default", "confirmed", "provisional")
_SCOPES = ("national", "local")
_YEAR_FILE = re.compile(r"(\d{4})\.toml")
_EXTENDS = re.compile(r"[a-z0-9_]+/\d{4}")
#: A ceiling above 2^63 / 10^6 would let a million records at the ceiling overflow a bigint sum.
_CEILING_HEADROOM = 2**63 // 1_000_000


class PolicyFileError(ValueError):
    """A policy table file is missing, unreadable or holds an invalid value.

    The message starts with the file's path. :meth:`as_domain_error` is what a user sees
    (``POLICY_FILE_INVALID``, the file and line, the problem): every entrance converts it
    there, so a malformed table is never a traceback.
    """

    code = "POLICY_FILE_INVALID"

    def location(self) -> tuple[str, int | None, str]:
        """(file, line or None, problem) read from the message: the TOML parser's line, or the line of the
        field the message names (``field 'resident.x'``) in that file."""
        text = str(self)
        path, _, problem = text.partition(": ")
        found = re.search(r"at line (\d+)", problem)
        if found:
            return path, int(found.group(1)), problem
        field = re.search(r"field '([^']+)'", problem)
        return path, (_line_of(Path(path), field.group(1)) if field else None), problem

    def as_domain_error(self) -> DomainError:
        path, line, problem = self.location()
        where = f"{path}:{line}" if line else path
        return DomainError(self.code, f"策略表文件无效 {where}：{problem}（请修正该文件，或检查 LEDGER_POLICY_DIR 指向的目录；"
                                      f"policy file invalid: {where}: {problem}）", file=path, line=line)


def _line_of(path: Path, dotted: str) -> int | None:
    """The line of ``dotted`` (``section.key``) in a TOML file, best effort (None when not found)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    section, _, key = dotted.rpartition(".")
    current = ""
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        header = re.fullmatch(r"\[+\s*([^\]]+?)\s*\]+(\s*#.*)?", stripped)
        if header:
            current = header.group(1).strip()
            if not key and current == dotted:
                return number
            continue
        if current == section and re.match(rf"{re.escape(key)}\s*=", stripped):
            return number
    return None


# --------------------------------------------------------------------------- loading


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise PolicyFileError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyFileError(f"{path}: not valid TOML: {exc}") from None


class _Merged:
    """A table after resolving ``extends``, remembering which file supplied each value."""

    def __init__(self, data: dict[str, Any], origins: dict[str, Path], leaf: Path) -> None:
        self.data = data
        self.origins = origins
        self.leaf = leaf

    def origin(self, dotted: str) -> Path:
        # The file that set this value, or the nearest file that set a parent table,
        # or else the region-year file itself (a missing value is missing there).
        key = dotted
        while key:
            if key in self.origins:
                return self.origins[key]
            key = key.rpartition(".")[0]
        return self.leaf


def _deep_merge(base: dict[str, Any], over: dict[str, Any], origins: dict[str, Path], file: Path,
                prefix: str = "") -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value, origins, file, dotted + ".")
        else:
            merged[key] = value
            _record_origins(value, origins, file, dotted)
    return merged


def _record_origins(value: Any, origins: dict[str, Path], file: Path, dotted: str) -> None:
    origins[dotted] = file
    if isinstance(value, dict):
        for key, sub in value.items():
            _record_origins(sub, origins, file, f"{dotted}.{key}")


def _resolve(root: Path, path: Path, chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], dict[str, Path]]:
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise PolicyFileError(f"{path}: 'extends' forms a cycle: {cycle}")
    raw = _read_toml(path)
    extends = raw.get("extends")
    origins: dict[str, Path] = {}
    base: dict[str, Any] = {}
    if extends is not None:
        if not isinstance(extends, str) or not _EXTENDS.fullmatch(extends):
            raise PolicyFileError(
                f"{path}: field 'extends' must look like \"national/2025\", found {extends!r}"
            )
        base_path = root / f"{extends}.toml"
        if not base_path.is_file():
            raise PolicyFileError(f"{path}: field 'extends' names {extends!r}, but {base_path} does not exist")
        base, origins = _resolve(root, base_path, (*chain, path))
        # Metadata belongs to the file that states it, never to the files extending it.
        for key in _META_KEYS:
            base.pop(key, None)
            origins.pop(key, None)
    merged = _deep_merge(base, raw, origins, path)
    return merged, origins


# --------------------------------------------------------------------------- validation


class _Section:
    """Typed access to one TOML table, with errors naming file and field."""

    def __init__(self, merged: _Merged, data: Any, prefix: str) -> None:
        self.merged = merged
        self.prefix = prefix
        self.seen: set[str] = set()
        if not isinstance(data, dict):
            self.fail("", f"must be a table, found {_kind(data)}")
        self.data: dict[str, Any] = data

    def dotted(self, key: str) -> str:
        return f"{self.prefix}{key}" if key else self.prefix.rstrip(".")

    def fail(self, key: str, problem: str) -> None:
        dotted = self.dotted(key)
        origin = self.merged.origin(dotted)
        note = "" if origin == self.merged.leaf else f" (inherited by {self.merged.leaf})"
        raise PolicyFileError(f"{origin}: field '{dotted}' {problem}{note}")

    def _get(self, key: str, required: bool) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if required:
                # Missing is reported against the region-year file: the value may be
                # added there or in any file it extends.
                raise PolicyFileError(
                    f"{self.merged.leaf}: field '{self.dotted(key)}' is missing "
                    "(looked in this file and the files it extends)"
                )
            return None
        return self.data[key]

    def int_(self, key: str, *, required: bool = True, maximum: int | None = None, unit: str = "") -> int | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            extra = " (amounts are whole fen, rates whole basis points)" if isinstance(value, float) else ""
            self.fail(key, f"must be a whole number{unit}, found {_kind(value)} {value!r}{extra}")
        if value < 0:
            self.fail(key, f"must not be negative, found {value}")
        if maximum is not None and value > maximum:
            self.fail(key, f"must be at most {maximum}, found {value}")
        return value

    def date_(self, key: str, *, required: bool = True) -> date | None:
        value = self._get(key, required)
        if value is None:
            return None
        if type(value) is not date:
            self.fail(key, f"must be a date like 2024-09-01, found {_kind(value)} {value!r}")
        return value

    def bool_(self, key: str, *, required: bool = True, default: bool = False) -> bool:
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, found {_kind(value)} {value!r}")
        return value

    def str_(self, key: str, *, required: bool = True, choices: tuple[str, ...] | None = None) -> str | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be a non-empty string, found {_kind(value)} {value!r}")
        if choices is not None and value not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}, found {value!r}")
        return value

    def str_list(self, key: str, *, choices: Mapping[str, str]) -> list[str]:
        value = self._get(key, False)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"must be a list of strings, found {_kind(value)}")
        for item in value:
            if item not in choices:
                self.fail(key, f"holds unknown code {item!r}; known: {', '.join(choices)}")
        return value

    def section(self, key: str, *, required: bool = True) -> _Section | None:
        value = self._get(key, required)
        if value is None:
            return None
        return _Section(self.merged, value, self.dotted(key) + ".")

    def no_extra(self, *ignored: str) -> None:
        extra = sorted(set(self.data) - self.seen - set(ignored))
        if extra:
            self.fail(extra[0], "is not a known field (misspelt?)")


def _kind(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "decimal number", str: "string", list: "list",
            dict: "table", date: "date"}.get(type(value), type(value).__name__)


def _resident(sec: _Section, year: int) -> ResidentPolicy:
    individual = sec.int_("individual_share_fen")
    fiscal = sec.int_("fiscal_subsidy_fen")
    start = sec.date_("concentrated_start")
    end = sec.date_("concentrated_end")
    due = sec.date_("due_date")
    ext_end = sec.date_("extended_window_end", required=False)
    ext_free = sec.bool_("extended_window_waiting_free", required=False)
    cov = sec.date_("coverage_start")
    if end < start:
        sec.fail("concentrated_end", f"({end}) is before concentrated_start ({start})")
    if due < start:
        sec.fail("due_date", f"({due}) is before concentrated_start ({start})")
    if ext_end is not None and ext_end < end:
        sec.fail("extended_window_end", f"({ext_end}) is before concentrated_end ({end})")
    if cov.year != year:
        sec.fail("coverage_start", f"({cov}) is not in coverage year {year}")

    sub = sec.section("subsidy")
    status_rule = StatusRule(sub.str_("status_rule", choices=tuple(StatusRule)))
    status_date = sub.date_("status_date", required=status_rule is StatusRule.ON_DATE)
    cats = sub.section("categories")
    rules: dict[str, SubsidyRule] = {}
    for code in cats.data:
        if code not in SUBSIDY_CATEGORIES:
            cats.fail(code, f"is an unknown subsidy category; known: {', '.join(SUBSIDY_CATEGORIES)}")
        rules[code] = _subsidy_rule(cats.section(code), code)
    sub.no_extra()

    waiting = _waiting(sec.section("waiting"))
    continuity = _continuity(sec.section("continuity"))
    targets = sec.section("targets", required=False)
    coverage_target = subsidised_target = None
    if targets is not None:
        coverage_target = targets.int_("coverage_bp", required=False, maximum=10_000)
        subsidised_target = targets.int_("subsidised_coverage_bp", required=False, maximum=10_000)
        targets.no_extra()
    sec.no_extra()
    return ResidentPolicy(
        individual_share_fen=individual,
        fiscal_subsidy_fen=fiscal,
        concentrated_start=start,
        concentrated_end=end,
        due_date=due,
        extended_window_end=ext_end,
        extended_window_waiting_free=ext_free,
        coverage_start=cov,
        status_rule=status_rule,
        status_date=status_date,
        subsidies=MappingProxyType(rules),
        waiting=waiting,
        continuity=continuity,
        coverage_target_bp=coverage_target,
        subsidised_coverage_target_bp=subsidised_target,
    )


def _subsidy_rule(sec: _Section, code: str) -> SubsidyRule:
    kind = SubsidyKind(sec.str_("kind", choices=tuple(SubsidyKind)))
    amount = sec.int_("amount_fen", required=kind is SubsidyKind.FIXED_FEN)
    percent = sec.int_("percent_bp", required=kind is SubsidyKind.PERCENT, maximum=10_000)
    if kind is not SubsidyKind.FIXED_FEN and amount is not None:
        sec.fail("amount_fen", f"only applies to kind FIXED_FEN, not {kind}")
    if kind is not SubsidyKind.PERCENT and percent is not None:
        sec.fail("percent_bp", f"only applies to kind PERCENT, not {kind}")
    until = sec.date_("until", required=False)
    sec.no_extra()
    return SubsidyRule(category=code, kind=kind, amount_fen=amount, percent_bp=percent, until=until)


def _waiting(sec: _Section) -> WaitingRules:
    enabled = sec.bool_("enabled")
    exemptions = sec.str_list("exemptions", choices=WAITING_EXEMPTIONS)
    newborn = sec.int_("newborn_window_days", required="NEWBORN" in exemptions)
    switch = sec.int_("scheme_switch_max_gap_months", required="SCHEME_SWITCH" in exemptions)
    if not enabled:
        sec.no_extra("fixed_months", "per_gap_year_months", "repaired_min_months", "repaired_min_gap_years")
        return WaitingRules(enabled=False, exemptions=frozenset(exemptions),
                            newborn_window_days=newborn, scheme_switch_max_gap_months=switch)
    rules = WaitingRules(
        enabled=True,
        fixed_months=sec.int_("fixed_months", unit=" of months"),
        per_gap_year_months=sec.int_("per_gap_year_months", unit=" of months"),
        repaired_min_months=sec.int_("repaired_min_months", unit=" of months"),
        repaired_min_gap_years=sec.int_("repaired_min_gap_years", unit=" of years"),
        exemptions=frozenset(exemptions),
        newborn_window_days=newborn,
        scheme_switch_max_gap_months=switch,
    )
    sec.no_extra()
    return rules


def _continuity(sec: _Section) -> ContinuityIncentive:
    enabled = sec.bool_("enabled")
    if not enabled:
        sec.no_extra("after_years", "increment_fen", "claim_free_increment_fen", "cap_percent",
                     "base_critical_illness_cap_fen")
        return ContinuityIncentive(enabled=False)
    incentive = ContinuityIncentive(
        enabled=True,
        after_years=sec.int_("after_years"),
        increment_fen=sec.int_("increment_fen"),
        claim_free_increment_fen=sec.int_("claim_free_increment_fen"),
        cap_percent=sec.int_("cap_percent", maximum=100),
        base_critical_illness_cap_fen=sec.int_("base_critical_illness_cap_fen"),
    )
    sec.no_extra()
    return incentive


def _employee(sec: _Section) -> EmployeePolicy:
    policy = EmployeePolicy(
        employer_rate_bp=sec.int_("employer_rate_bp", maximum=10_000),
        employee_rate_bp=sec.int_("employee_rate_bp", maximum=10_000),
        average_monthly_wage_fen=sec.int_("average_monthly_wage_fen"),
        base_floor_percent=sec.int_("base_floor_percent"),
        base_ceiling_percent=sec.int_("base_ceiling_percent"),
        personal_account_bp=sec.int_("personal_account_bp", maximum=10_000),
        retiree_monthly_credit_fen=sec.int_("retiree_monthly_credit_fen"),
        min_contribution_years_male=sec.int_("min_contribution_years_male"),
        min_contribution_years_female=sec.int_("min_contribution_years_female"),
        late_fee_ppm_per_day=sec.int_("late_fee_ppm_per_day", maximum=1_000_000),
        due_month_offset=sec.int_("due_month_offset", maximum=12),
        due_day=sec.int_("due_day", maximum=31),
    )
    if policy.due_day == 0:
        sec.fail("due_day", "must be a day of the month, 1 to 31")
    if policy.average_monthly_wage_fen == 0:
        sec.fail("average_monthly_wage_fen", "must be positive (the base limits derive from it)")
    if policy.base_floor_percent > policy.base_ceiling_percent:
        sec.fail("base_floor_percent",
                 f"({policy.base_floor_percent}) is above base_ceiling_percent ({policy.base_ceiling_percent})")
    if policy.personal_account_bp > policy.employee_rate_bp:
        # Since 国办发〔2021〕14号 the account is credited only from the member's own share.
        sec.fail("personal_account_bp",
                 f"({policy.personal_account_bp}) exceeds employee_rate_bp ({policy.employee_rate_bp}); "
                 "the personal account is credited only from the member's own share")
    sec.no_extra()
    return policy


def _date_list(sec: _Section, key: str) -> frozenset[date]:
    value = sec._get(key, True)
    if not isinstance(value, list) or not all(type(v) is date for v in value):
        sec.fail(key, f"must be a list of dates like 2025-10-01, found {_kind(value)}")
    return frozenset(value)


def _transfer(sec: _Section) -> TransferPolicy:
    policy = TransferPolicy(
        sending_working_days=sec.int_("sending_working_days", maximum=60, unit=" of working days"),
        receiving_working_days=sec.int_("receiving_working_days", maximum=60, unit=" of working days"),
        back_pay_max_gap_months=sec.int_("back_pay_max_gap_months", maximum=12, unit=" of months"),
        waiting_max_months=sec.int_("waiting_max_months", maximum=12, unit=" of months"),
        holidays=_date_list(sec, "holidays"),
        extra_workdays=_date_list(sec, "extra_workdays"),
    )
    if any(d.weekday() < 5 for d in policy.extra_workdays):
        sec.fail("extra_workdays", "lists only weekend days worked instead of a holiday (调休上班)")
    sec.no_extra()
    return policy


def _approval(sec: _Section | None) -> ApprovalPolicy | None:
    if sec is None:
        return None
    policy = ApprovalPolicy(
        correction_threshold_fen=sec.int_("correction_threshold_fen"),
        pending_expiry_hours=sec.int_("pending_expiry_hours", maximum=24 * 366, unit=" of hours"),
    )
    if policy.pending_expiry_hours == 0:
        sec.fail("pending_expiry_hours", "must be at least 1 (a change nobody can approve is useless)")
    sec.no_extra()
    return policy


def _digest(data: dict[str, Any], region: str, year: int) -> str:
    content = {k: v for k, v in data.items() if k != "extends"}
    content["region_code"] = region
    content["coverage_year"] = year
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                           default=lambda v: v.isoformat() if isinstance(v, date) else str(v))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def load_table(root: Path, region: str, year: int) -> PolicyTable:
    """Load, merge and check the table of one region and coverage year."""
    path = root / region / f"{year}.toml"
    data, origins = _resolve(root, path)
    merged = _Merged(data, origins, path)
    top = _Section(merged, data, "")
    top._get("extends", False)
    # Never inherited (see _resolve), so these come from the region-year file itself.
    version = top.str_("version")
    status = top.str_("status", choices=_STATUSES)
    source = top.str_("source")
    resident = _resident(top.section("resident"), year)
    employee = _employee(top.section("employee"))
    limits = top.section("limits")
    ceiling = limits.int_("amount_ceiling_fen")
    earliest = limits.date_("earliest_date")
    if not ceiling:
        limits.fail("amount_ceiling_fen", "must be positive")
    if ceiling > _CEILING_HEADROOM:
        # Sums of many records must stay far below 2^63 (PostgreSQL bigint, Avro long).
        limits.fail("amount_ceiling_fen", f"must be at most {_CEILING_HEADROOM} (2^63 / 10^6), found {ceiling}")
    limits.no_extra()
    transfer = _transfer(top.section("transfer"))
    approval = _approval(top.section("approval", required=False))
    provenance = _provenance(top.section("provenance", required=False), data)
    top.no_extra()
    if status == "provisional" and not any(f.provisional for f in provenance):
        top.fail("status", "is 'provisional' but no figure is marked provisional in [provenance]")
    return PolicyTable(
        region_code=region,
        coverage_year=year,
        version=version,
        digest=_digest(data, region, year),
        status=status,
        source=source,
        resident=resident,
        employee=employee,
        amount_ceiling_fen=ceiling,
        earliest_date=earliest,
        transfer=transfer,
        approval=approval,
        provenance=provenance,
    )


def _provenance(sec: _Section | None, data: dict[str, Any]) -> tuple[FigureSource, ...]:
    """``[provenance]``: ``"<dotted field>" = { scope = "national"|"local", source = "...", provisional = bool }``."""
    if sec is None:
        return ()
    out: list[FigureSource] = []
    for field in sorted(sec.data):
        entry = sec.section(field)
        node: Any = data
        for part in field.split("."):
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                sec.fail(field, "names a figure the table does not have (misspelt?)")
        out.append(FigureSource(
            field=field,
            scope=entry.str_("scope", choices=_SCOPES),
            source=entry.str_("source"),
            provisional=entry.bool_("provisional", required=False),
        ))
        entry.no_extra()
    sec.no_extra()
    return tuple(out)


# --------------------------------------------------------------------------- the book


class PolicyBook:
    """Every policy table, by region and coverage year; loaded and checked once."""

    def __init__(self, tables: Mapping[tuple[str, int], PolicyTable], directory: Path | None = None) -> None:
        self._tables = dict(tables)
        self.directory = directory
        self._limits: ValueLimits | None = None

    @classmethod
    def load(cls, directory: str | Path | None = None) -> PolicyBook:
        root = Path(directory) if directory is not None else DEFAULT_TABLES_DIR
        if not root.is_dir():
            raise PolicyFileError(f"{root}: policy tables directory not found")
        tables: dict[tuple[str, int], PolicyTable] = {}
        versions: dict[str, Path] = {}
        for region_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            if not (len(region_dir.name) == 6 and region_dir.name.isdigit()):
                continue  # a base directory (national/, ankang/): only read through 'extends'
            try:
                region = validate_region_code(region_dir.name)
            except DomainError as exc:
                raise PolicyFileError(f"{region_dir}: directory name is not a region code: {exc.message}") from None
            for file in sorted(region_dir.iterdir()):
                if file.suffix != ".toml":
                    continue
                match = _YEAR_FILE.fullmatch(file.name)
                if not match:
                    raise PolicyFileError(f"{file}: table files are named <coverage year>.toml, e.g. 2025.toml")
                year = int(match.group(1))
                table = load_table(root, region, year)
                if table.version in versions:
                    raise PolicyFileError(
                        f"{file}: field 'version' {table.version!r} is already used by {versions[table.version]}"
                    )
                versions[table.version] = file
                tables[(region, year)] = table
        if not tables:
            raise PolicyFileError(f"{root}: no policy tables found (expected <region_code>/<year>.toml files)")
        return cls(tables, root)

    def get(self, region_code: str, coverage_year: int) -> PolicyTable:
        """The table for a region and coverage year; NotFound REGION_UNKNOWN / POLICY_YEAR_UNKNOWN."""
        region = validate_region_code(region_code)
        year = int(coverage_year)
        table = self._tables.get((region, year))
        if table is not None:
            return table
        years = self._years(region)
        if not years:
            raise NotFound(
                "REGION_UNKNOWN",
                f"region {region} has no policy tables; this ledger serves "
                f"{', '.join(sorted(self.regions()))}",
                region_code=region,
            )
        raise NotFound(
            "POLICY_YEAR_UNKNOWN",
            f"region {region} has no policy table for coverage year {year}; "
            f"tables exist for {', '.join(str(y) for y in years)}",
            region_code=region,
            coverage_year=year,
            years_available=years,
        )

    def regions(self) -> set[str]:
        return {region for region, _ in self._tables}

    def approval(self, region_code: str, on: date) -> ApprovalPolicy:
        """The maker-checker rules (``[approval]``) of a region on a day: its table of that year, or the latest
        earlier one with the section (else the earliest later one); APPROVAL_POLICY_MISSING when none has it."""
        region = validate_region_code(region_code)
        years = self._years(region)
        if not years:
            self.get(region, on.year)  # REGION_UNKNOWN
        ordered = [y for y in reversed(years) if y <= on.year] + [y for y in years if y > on.year]
        for year in ordered:
            policy = self._tables[(region, year)].approval
            if policy is not None:
                return policy
        raise NotFound("APPROVAL_POLICY_MISSING",
                       f"参保地 {region} 的政策表没有 [approval]（双人复核）一节 (no table of region {region} "
                       "declares the [approval] section: correction_threshold_fen, pending_expiry_hours)",
                       region_code=region)

    def value_limits(self) -> ValueLimits:
        """The range every entrance checks amounts and business dates against (see :class:`ValueLimits`).

        The strictest figures of all tables (they are national, so normally all equal), and
        a horizon of the last day of the year after the latest coverage year with a table.
        """
        if self._limits is None:
            tables = list(self._tables.values())
            self._limits = ValueLimits(
                amount_ceiling_fen=min(t.amount_ceiling_fen for t in tables),
                earliest_date=max(t.earliest_date for t in tables),
                latest_date=date(max(t.coverage_year for t in tables) + 1, 12, 31),
            )
        return self._limits

    def _years(self, region: str) -> list[int]:
        return sorted(year for r, year in self._tables if r == region)

    def years(self, region_code: str) -> list[int]:
        """Coverage years with a table for the region, ascending (empty if the region is unknown)."""
        return self._years(validate_region_code(region_code))

    def tables(self) -> Iterator[PolicyTable]:
        return (self._tables[key] for key in sorted(self._tables))

    def __len__(self) -> int:
        return len(self._tables)

    def __contains__(self, key: object) -> bool:
        return key in self._tables


@lru_cache(maxsize=1)
def default_policy_book() -> PolicyBook:
    """The policy book shipped with the package, loaded once per process."""
    return PolicyBook.load()


def default_value_limits() -> ValueLimits:
    """The value limits of the shipped policy book (the gate's figures where no book is at hand)."""
    return default_policy_book().value_limits()
