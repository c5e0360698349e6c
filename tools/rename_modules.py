"""Rename modules so that a newcomer can guess from the path what each holds (issue #20), and every reference.

Run from anywhere inside the repository (``python tools/rename_modules.py``; ``--dry-run`` to see
what it would do). For each entry of :data:`RENAMES` it ``git mv``s the file, then rewrites every
reference in every text file git knows of (tracked and untracked, ignored ones left out):

* dotted module paths anywhere: imports, ``python -m`` strings, ``module:Class`` topics, monkeypatch
  targets such as ``"projections.projector.ProjectionRunner"``, import-linter contracts, docs;
* ``from package import old`` becomes ``from package import new as old`` (the file's own name for it
  stays, so nothing else in that file has to change);
* file paths (``projections/projector.py``): README, docs, the settings registry's "read by" column;
* the bare names in the ``layers`` of import-linter contracts whose ``containers`` is the package, and
  import-linter's relative names in a cycle report (``.rows -> .verify``).

References are found by module path, never by line, so the script can be run again on a tree other
people have edited since (the lead runs it on the merged main). It is idempotent: a rename already
done is reported and its references are rewritten again (none left: nothing changes). A rename whose
old file is gone and whose new file does not exist (someone moved or removed it) is skipped and said
so; one whose old and new files both exist is a conflict, skipped, and the script exits 1.

Not renamed on purpose: modules that define stored classes. eventsourcing stores each event's and
snapshot's class topic (``module:Class``) in every stored event, and ``CIPHER_TOPIC`` names
``events.cipher:LedgerCipher`` in deployments: ``ledger/domain/person.py``, ``source_record.py``,
``feed_rejection.py`` and ``events/cipher.py`` keep their paths. None of the modules below defines a
class whose path is stored anywhere (view rows and reconciliation rows are plain JSON, digests name
classes by ``__qualname__`` only), so no old-to-new topic map is needed.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

#: (old path, new path, why). Paths from the repository root.
RENAMES: list[tuple[str, str, str]] = [
    ("projections/runner.py", "projections/in_memory.py",
     "views folded in memory from any iterable of events (rebuild, catch_up): the pure reference, not a runner"),
    ("projections/projector.py", "projections/projection_runner.py",
     "holds ProjectionRunner: source -> fold -> view store, once or following; file named after its class"),
    ("projections/wiring.py", "projections/factory.py",
     "makes a system's view store, event source, runner and queries; the one wiring is entrypoints/wiring.py"),
    ("projections/codec.py", "projections/row_codec.py",
     "view rows as JSON text; not to be mistaken for events/codec.py (Avro)"),
    ("consumers/runner.py", "consumers/feed_consumer.py",
     "the feed consumer itself: FeedHandler (exactly once per batch) and ConsumerRunner (the poll loop)"),
    ("consumers/feeds.py", "consumers/feed_handlers.py",
     "the three feeds' handlers (TaxPaymentsHandler, StatusHandler, ResidentsHandler)"),
    ("consumers/feed_files.py", "consumers/file_feeder.py",
     "`ledger feed FILE`: puts an integrator's CSV/XLSX rows on the feed's topic"),
    ("reconciliation/runner.py", "reconciliation/ledger_side_runner.py",
     "holds LedgerSideRunner, which keeps the ledger side (ledger_side.py) up to date from the events"),
    ("reconciliation/wiring.py", "reconciliation/factory.py",
     "makes a system's reconciliation store, service and statement consumer; not a second wiring"),
    ("ledger/records.py", "ledger/inbound_records.py",
     "the records every channel hands the application (tax payment, status, resident) and their provenance"),
    ("entrypoints/audit/history.py", "entrypoints/audit/replay.py",
     "the auditor's replay of a person: every event with the state after it, and as of an instant; "
     "the person's typed history is ledger/domain/history.py"),
    ("entrypoints/audit/rows.py", "entrypoints/audit/stored_rows.py",
     "raw stored-event rows read straight from the recorder for verification"),
    ("entrypoints/simulation/feeds.py", "entrypoints/simulation/timeline.py",
     "the county's timeline of actions, replayed through the ledger, and its CSV files"),
]

#: Rewrites the generic ones cannot know: (file, text after the generic rewrite, wanted text).
SPECIAL: list[tuple[str, str, str]] = [
    # The projection runner logged as "projections.runner" (the pure module's old name): its own name now.
    ("projections/projection_runner.py", 'get_logger("projections.in_memory"',
     'get_logger("projections.projection_runner"'),
]

TEXT_SUFFIXES = {".py", ".toml", ".md", ".sh", ".txt", ".cfg", ".ini", ".yaml", ".yml", ".json", ".rst", ".html",
                 ".css", ".js", ".properties", ".xml", ".avsc", ".jsonl", ".csv", ""}
#: Files that name the old modules on purpose: this script and its test.
SKIP = {"tools/rename_modules.py", "tests/unit/test_rename_modules.py"}


def dotted(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def text_files(root: Path) -> list[str]:
    names = git(root, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    out = []
    for name in sorted(set(filter(None, names))):
        path = root / name
        if name in SKIP or not path.is_file() or path.is_symlink() or Path(name).suffix not in TEXT_SUFFIXES:
            continue
        if path.stat().st_size > 5_000_000:
            continue
        out.append(name)
    return out


def move(root: Path, old: str, new: str, dry: bool) -> str:
    """``moved``, ``done`` (already moved), ``gone`` (neither file) or ``conflict`` (both)."""
    o, n = (root / old).exists(), (root / new).exists()
    if o and n:
        return "conflict"
    if not o:
        return "done" if n else "gone"
    if not dry:
        (root / new).parent.mkdir(parents=True, exist_ok=True)
        git(root, "mv", old, new)
    return "moved"


def _import_items(items: str, old_leaf: str, new_leaf: str) -> str:
    """``a, old, b as c`` with ``old`` imported under its new name and kept under the old one."""
    parts = items.split(",")
    changed = False
    for i, part in enumerate(parts):
        m = re.fullmatch(r"(\s*)([A-Za-z_]\w*)(\s+as\s+[A-Za-z_]\w*)?(\s*)", part)
        if m and m.group(2) == old_leaf:
            alias = m.group(3) or f" as {old_leaf}"
            parts[i] = f"{m.group(1)}{new_leaf}{alias}{m.group(4)}"
            changed = True
    return ",".join(parts) if changed else items


def rewrite_text(text: str, old: str, new: str) -> tuple[str, int]:
    """Every reference to module ``old`` (a path) made one to ``new``; returns the text and the count."""
    count = 0
    o_mod, n_mod = dotted(old), dotted(new)
    o_pkg, _, o_leaf = o_mod.rpartition(".")
    n_pkg, _, n_leaf = n_mod.rpartition(".")
    assert o_pkg == n_pkg, "a rename keeps the module in its package"

    # from package import old [as x]  (single line, or a parenthesised list)
    pattern = re.compile(r"(^[ \t]*from[ \t]+" + re.escape(o_pkg) + r"[ \t]+import[ \t]+)(\([^)]*\)|[^\n#]*)",
                         re.MULTILINE)

    def fix_import(m: re.Match[str]) -> str:
        nonlocal count
        items = m.group(2)
        inner = items[1:-1] if items.startswith("(") else items
        fixed = _import_items(inner, o_leaf, n_leaf)
        if fixed == inner:
            return m.group(0)
        count += 1
        return m.group(1) + (f"({fixed})" if items.startswith("(") else fixed)

    text = pattern.sub(fix_import, text)

    # dotted module paths: projections.projector, projections.projector.X, "projections.projector:Y"
    text, n = re.subn(r"(?<![\w.])" + re.escape(o_mod) + r"(?!\w)", n_mod, text)
    count += n
    # file paths: projections/projector.py (also at the end of a longer path to the same file)
    o_path, n_path = old.removesuffix(".py"), new.removesuffix(".py")
    text, n = re.subn(r"(?<![\w.])" + re.escape(o_path) + r"(?=\.py(?!\w)|[^\w/.]|\.(?!py)|$)", n_path, text)
    count += n
    # import-linter's names of sibling modules in a cycle report: ".rows -> .verify"
    text, n = re.subn(r"(?<![\w.])\." + re.escape(o_leaf) + r"(?=\s+->)|(?<=->\s)\." + re.escape(o_leaf) + r"(?![\w.])",
                      "." + n_leaf, text)
    count += n
    return text, count


def rewrite_contract_layers(text: str, old: str, new: str) -> tuple[str, int]:
    """pyproject: bare layer names of contracts whose ``containers`` holds the module's package."""
    o_pkg, _, o_leaf = dotted(old).rpartition(".")
    n_leaf = dotted(new).rpartition(".")[2]
    count = 0
    blocks = re.split(r"(?=^\[\[tool\.importlinter\.contracts\]\])", text, flags=re.MULTILINE)
    for i, block in enumerate(blocks):
        containers = re.search(r"^containers\s*=\s*\[([^\]]*)\]", block, re.MULTILINE)
        if not containers or f'"{o_pkg}"' not in containers.group(1):
            continue
        layers = re.search(r"^layers\s*=\s*\[.*?^\]", block, re.MULTILINE | re.DOTALL)
        if not layers:
            continue

        def fix_string(m: re.Match[str]) -> str:
            nonlocal count
            fixed, n = re.subn(r"(?<![\w.])" + re.escape(o_leaf) + r"(?![\w.])", n_leaf, m.group(0))
            count += n
            return fixed

        section = re.sub(r'"[^"\n]*"', fix_string, layers.group(0))
        blocks[i] = block[:layers.start()] + section + block[layers.end():]
    return "".join(blocks), count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    args = parser.parse_args(argv)
    root = Path(subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                               check=True, cwd=Path(__file__).resolve().parent).stdout.strip())
    active: list[tuple[str, str]] = []
    conflicts = 0
    for old, new, why in RENAMES:
        state = move(root, old, new, args.dry_run)
        print(f"{state:9} {old} -> {new}   ({why})")
        if state in ("moved", "done"):
            active.append((old, new))
        conflicts += state == "conflict"
    total = 0
    for name in text_files(root):
        path = root / name
        try:
            before = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        text, counts = before, []
        for old, new in active:
            text, n = rewrite_text(text, old, new)
            if name == "pyproject.toml":
                text, m = rewrite_contract_layers(text, old, new)
                n += m
            if n:
                counts.append(f"{dotted(old)}->{dotted(new).rpartition('.')[2]} x{n}")
        for file, wrong, right in SPECIAL:
            if name == file and wrong in text:
                text = text.replace(wrong, right)
                counts.append(f"special: {right}")
        if text != before:
            total += 1
            print(f"rewrote   {name}: {', '.join(counts)}")
            if not args.dry_run:
                path.write_text(text, encoding="utf-8")

    # Mentions by the bare file name (``runner.py``) are not module paths: listed to be read by a person.
    leftovers = []
    for name in text_files(root):
        try:
            text = (root / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for old, _new in active:
            package, leaf = old.rsplit("/", 1)
            if not name.startswith(package + "/"):
                continue
            for lineno, line in enumerate(text.splitlines(), 1):
                if re.search(r"(?<![\w/.])" + re.escape(leaf) + r"(?!\w)", line):
                    leftovers.append(f"{name}:{lineno}: {line.strip()[:100]}")
    for line in leftovers:
        print(f"check     {line}")
    print(f"{len(active)} renames in place, {total} files rewritten, {conflicts} conflicts, "
          f"{len(leftovers)} bare file-name mentions to check" + (" (dry run)" if args.dry_run else ""))
    return 1 if conflicts else 0


if __name__ == "__main__":
    sys.exit(main())
