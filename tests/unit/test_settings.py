"""One settings module reads the environment (infra/settings.py), and the README documents every variable.

(a) An ``ast`` scan of the system's packages finds no read of the process environment outside
    ``infra/settings.py``. What counts as a read: every use of ``os.environ`` / ``os.environb`` /
    ``os.getenv`` (also through ``import os as o`` or ``from os import environ``) except
      * a write: ``os.environ[k] = v``, ``del os.environ[k]``, ``os.environ.update(...)``,
        ``os.environ.pop(...)``, ``os.environ.clear()``;
      * a copy handed to a child process: ``os.environ.copy()``, ``dict(os.environ, ...)`` or
        ``{**os.environ, ...}`` written directly as the ``env=`` argument of a call.
    Everything else (``os.environ.get``, ``os.environ[k]``, ``env = os.environ``,
    ``dict(os.environ)`` kept in a variable, ``os.getenv``) is a read and fails the test.
(b) The README's configuration tables (between the ``settings:begin`` / ``settings:end`` markers)
    are the registry's own output, and every ``LEDGER_*`` name the code, the tests and the shell
    scripts use is in the registry.
(c) A value that does not parse is refused with ``SETTING_INVALID`` naming the variable.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra import settings as settings_module
from infra.settings import (HARNESS, STACK, SYSTEM, TABLE_BEGIN, TABLE_END, VARIABLES, SettingError, UnknownVariable,
                            load_settings, markdown, setting, setting_text)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("entrypoints", "ledger", "events", "projections", "reconciliation", "consumers", "infra")
THE_READER = ROOT / "infra" / "settings.py"
WRITE_METHODS = {"update", "pop", "clear"}
#: String constants shaped like a variable that are not one.
NOT_VARIABLES = {"LEDGER_ROW_CONFLICT",  # reconciliation/store.py: an error code
                 "LEDGER_COLUMNS", "LEDGER_EVENTS_TOPIC",  # Python names in an __all__
                 "LEDGER_CIPHER",  # tests/integration/test_hostile_pii.py: a prefix of LEDGER_CIPHER_*
                 "LEDGER_NOT_A_SETTING"}  # this file: the unregistered name it asks for


# --------------------------------------------------------------------------- (a) the scan
def environment_reads(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: code`` of every read of the process environment in ``source`` (see the module docstring)."""
    tree = ast.parse(source, filename)
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    os_names, env_names = {"os"}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            env_names |= {a.asname or a.name for a in node.names if a.name in ("environ", "environb", "getenv")}

    def is_environment(node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return node.value.id in os_names and node.attr in ("environ", "environb", "getenv")
        return isinstance(node, ast.Name) and node.id in env_names and isinstance(node.ctx, ast.Load)

    def child_env_copy(node: ast.AST) -> bool:
        parent = parents.get(node)
        copy: ast.AST | None = None
        if isinstance(parent, ast.Attribute) and parent.attr == "copy":
            call = parents.get(parent)
            copy = call if isinstance(call, ast.Call) and call.func is parent else None
        elif isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id == "dict" \
                and parent.args and parent.args[0] is node:
            copy = parent
        elif isinstance(parent, ast.Dict) and any(k is None and v is node for k, v in zip(parent.keys, parent.values)):
            copy = parent
        holder = parents.get(copy) if copy is not None else None
        return isinstance(holder, ast.keyword) and holder.arg == "env"

    def allowed(node: ast.AST) -> bool:
        parent = parents.get(node)
        if isinstance(parent, ast.Subscript) and parent.value is node and isinstance(parent.ctx, (ast.Store, ast.Del)):
            return True
        if isinstance(parent, ast.Attribute) and parent.value is node and parent.attr in WRITE_METHODS:
            return isinstance(parents.get(parent), ast.Call)
        return child_env_copy(node)

    lines = source.splitlines()
    return [f"{filename}:{node.lineno}: {lines[node.lineno - 1].strip()}"
            for node in ast.walk(tree) if is_environment(node) and not allowed(node)]


def system_modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_the_scan_sees_reads_and_lets_writes_and_child_copies_pass():
    reads = [
        'import os\nx = os.environ.get("LEDGER_X")',
        'import os\nx = os.environ["LEDGER_X"]',
        'import os\nx = os.getenv("LEDGER_X")',
        'import os\nenv = os.environ\n',
        'import os\nenv = dict(os.environ)\n',
        'import os\nenv = {**os.environ}\n',
        'import os\nf(os.environ)\n',
        'import os as o\nx = o.environ.get("X")',
        'from os import environ\nx = environ.get("X")',
        'from os import getenv as g\nx = g("X")',
        'import os\nx = "X" in os.environ',
    ]
    for source in reads:
        assert environment_reads(source), source
    writes = [
        'import os\nos.environ["CREATE_TABLE"] = "no"',
        'import os\ndel os.environ["X"]',
        'import os\nos.environ.update({"X": "1"})',
        'import os\nos.environ.pop("X", None)',
        'import os\nsubprocess.run(cmd, env=os.environ.copy())',
        'import os\nsubprocess.run(cmd, env={**os.environ, "X": "1"})',
        'import os\nsubprocess.Popen(cmd, env=dict(os.environ, X="1"))',
    ]
    for source in writes:
        assert environment_reads(source) == [], source


def test_no_module_of_the_system_reads_the_environment_but_infra_settings():
    modules = system_modules()
    assert THE_READER in modules and len(modules) > 100
    assert environment_reads(THE_READER.read_text(), "infra/settings.py")  # the scan does see the one reader
    found = [hit for path in modules if path != THE_READER
             for hit in environment_reads(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == [], "read the variable through infra.settings (setting / setting_text), and register it"


def test_every_variable_asked_of_the_settings_module_is_registered():
    asked = set()
    for path in [*system_modules(), *sorted((ROOT / "benchmarks").glob("*.py"))]:
        tree = ast.parse(path.read_text())
        # The module's own name constants (CATCH_UP_ENV = "LEDGER_API_CATCH_UP") count as their text.
        constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                     and isinstance(n.value, ast.Constant) for t in n.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None))
                    in ("setting", "setting_text") and node.args):
                first = node.args[0]
                if isinstance(first, ast.Constant):
                    asked.add(first.value)
                elif isinstance(first, ast.Name) and first.id in constants:
                    asked.add(constants[first.id])
    assert {"LEDGER_API_CATCH_UP", "LEDGER_TOKENS_FILE", "LEDGER_KAFKA_BROKERS", "JAVA_HOME"} <= asked
    for name in asked:
        settings_module.variable(name)  # UnknownVariable otherwise
    with pytest.raises(UnknownVariable, match="LEDGER_NOT_A_SETTING"):
        setting_text("LEDGER_NOT_A_SETTING", {})


# --------------------------------------------------------------------------- (b) the README's table
def readme_table() -> str:
    text = (ROOT / "README.md").read_text()
    assert text.count(TABLE_BEGIN) == 1 and text.count(TABLE_END) == 1, "the README lost its settings markers"
    return text.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0].strip("\n") + "\n"


def table_names(table: str) -> list[str]:
    return re.findall(r"^\| `([A-Z0-9_*]+)` \|", table, flags=re.M)


def test_the_readme_table_is_the_registry_and_names_every_variable():
    table = readme_table()
    names = table_names(table)
    assert len(names) == len(set(names)), "a variable is listed twice"
    assert set(names) == {v.name for v in VARIABLES}
    assert "LEDGER_POLICY_DIR" in names and "LEDGER_API_CATCH_UP" in names
    assert table == markdown(), "regenerate the table: python -m infra.settings --markdown"


def test_the_registry_is_well_formed():
    names = [v.name for v in VARIABLES]
    assert len(names) == len(set(names))
    for v in VARIABLES:
        assert v.group in (SYSTEM, STACK, HARNESS), v.name
        assert v.meaning and v.readers and v.default, v.name
        assert "|" not in v.default + v.meaning + v.readers, v.name  # it would split the table's row
        if v.fallback is not None:
            v.parse(v.fallback)  # the documented default parses


def test_every_ledger_variable_the_code_tests_and_scripts_name_is_registered():
    used: dict[str, str] = {}
    for path in sorted({*system_modules(), *(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")}):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.fullmatch(r"LEDGER_[A-Z0-9_]+", node.value):
                used.setdefault(node.value, str(path.relative_to(ROOT)))
    for path in sorted(ROOT.glob("infra/*.sh")) + sorted(ROOT.glob(".ci/*")):
        for name in re.findall(r"\$\{?(LEDGER_[A-Z0-9_]+)", path.read_text()):
            used.setdefault(name, str(path.relative_to(ROOT)))
    registered = {v.name for v in VARIABLES}
    assert {"LEDGER_FAULTS", "LEDGER_KEEP_STACK", "LEDGER_TOKEN", "LEDGER_PG_PORT"} <= set(used)
    missing = {name: where for name, where in used.items() if name not in registered | NOT_VARIABLES}
    assert missing == {}


def test_the_markdown_command_prints_the_table():
    out = subprocess.run([sys.executable, "-m", "infra.settings", "--markdown"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == markdown()


# --------------------------------------------------------------------------- (c) values
@pytest.mark.parametrize("name, text", [
    ("LEDGER_API_CATCH_UP", "yes"),
    ("LEDGER_PERSISTENCE", "mysql"),
    ("LEDGER_RECON_INCOMPLETE_AFTER_HOURS", "-1"),
    ("LEDGER_RECON_INCOMPLETE_AFTER_HOURS", "two"),
    ("LEDGER_RECON_INCOMPLETE_AFTER_HOURS", "nan"),
    ("LEDGER_KAFKA_STARTUP_WAIT", "5 min"),
    ("LEDGER_FAULT_PUBLISHER_PAUSE", "sometime"),
    ("LEDGER_FAULT_PUBLISHER_PAUSE_S", "-3"),
    ("LEDGER_REQUIRE_ID_KEY", "true"),
    ("LEDGER_CIPHER_READ_PLAIN", "yes"),
])
def test_a_value_that_does_not_parse_is_refused_with_the_stable_code(tmp_path, name, text):
    env = {"LEDGER_STATE_DIR": str(tmp_path / "state"), "LEDGER_ID_KEY": "k", name: text}
    with pytest.raises(SettingError) as refused:
        load_settings(env)
    e = refused.value
    assert e.code == "SETTING_INVALID" and e.variable == name and e.details == {"variable": name}
    assert str(e).startswith(f"SETTING_INVALID: 环境变量 {name}={text!r} 无效") and f"（{name} must be " in str(e)
    assert not (tmp_path / "state").exists()  # refused before anything was created


def test_values_are_typed_and_defaults_apply():
    assert setting("LEDGER_API_CATCH_UP", {}) is True
    assert setting("LEDGER_API_CATCH_UP", {"LEDGER_API_CATCH_UP": "0"}) is False
    assert setting("LEDGER_RECON_INCOMPLETE_AFTER_HOURS", {}) is None  # the service's own default then
    assert setting("LEDGER_RECON_INCOMPLETE_AFTER_HOURS", {"LEDGER_RECON_INCOMPLETE_AFTER_HOURS": "1.5"}) == 1.5
    assert setting("LEDGER_KAFKA_STARTUP_WAIT", {}) == 300.0
    assert setting("LEDGER_KAFKA_STARTUP_WAIT", {"LEDGER_KAFKA_STARTUP_WAIT": "0"}) == 0.0
    assert setting("LEDGER_PERSISTENCE", {}) == "sqlite"
    assert setting("LEDGER_FAULT_PUBLISHER_PAUSE", {}) is None
    assert setting("LEDGER_KAFKA_PORT", {"LEDGER_KAFKA_PORT": "29092"}) == 29092
    with pytest.raises(SettingError, match="LEDGER_KAFKA_PORT"):
        setting("LEDGER_KAFKA_PORT", {"LEDGER_KAFKA_PORT": "70000"})


def test_a_secret_is_not_echoed_in_the_message():
    e = SettingError("LEDGER_ID_KEY", "s3cr3t-value", "无法识别", "readable", secret=True)
    assert "s3cr3t" not in str(e) and "LEDGER_ID_KEY" in str(e)


def test_load_settings_carries_the_store_files_of_its_environment(tmp_path):
    env = {"LEDGER_STATE_DIR": str(tmp_path), "LEDGER_ID_KEY": "k", "LEDGER_RECON_PATH": str(tmp_path / "r.db")}
    s = load_settings(env)
    assert s.views_file() == tmp_path / "views.sqlite"
    assert s.recon_file() == tmp_path / "r.db"
    assert s.digests_file() == tmp_path / "audit-digests.jsonl"
    assert s.sqlite_path == str(tmp_path / "ledger.sqlite")
    assert (tmp_path / "cipher_key").exists() and not (tmp_path / "id_key").exists()  # LEDGER_ID_KEY was given


def test_settings_built_by_hand_take_the_store_files_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGER_VIEWS_PATH", str(tmp_path / "v.sqlite"))
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path))
    s = settings_module.Settings(persistence="sqlite", sqlite_path=str(tmp_path / "l.sqlite"))
    assert s.views_file() == tmp_path / "v.sqlite"
    assert s.recon_file() == tmp_path / "reconciliation.sqlite"


def test_the_store_cipher_topic_names_the_ledgers_cipher():
    from events.cipher import TOPIC

    assert settings_module.STORE_CIPHER_TOPIC == TOPIC


def test_a_deployment_still_naming_the_ciphers_old_topic_gets_the_same_class():
    """The cipher moved from ledger/cipher.py to events/cipher.py; an environment written before keeps working."""
    from eventsourcing.utils import resolve_topic

    from events.cipher import LedgerCipher

    env = {"CIPHER_TOPIC": "ledger.cipher:LedgerCipher"}
    topic = settings_module._store_cipher(env, "sqlite", ("a2V5", []))["CIPHER_TOPIC"]
    assert topic == "events.cipher:LedgerCipher"
    assert resolve_topic(topic) is LedgerCipher
    other = {"CIPHER_TOPIC": "eventsourcing.cipher:AESCipher"}  # any other topic is kept as given
    assert settings_module._store_cipher(other, "sqlite", ("a2V5", []))["CIPHER_TOPIC"] == other["CIPHER_TOPIC"]


def test_a_generated_key_is_one_the_key_ring_reads(tmp_path):
    from events.pii import parse_key

    assert len(parse_key(settings_module._new_key())) == 32
