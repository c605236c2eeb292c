"""Mutation testing: mutmut over the engine, the request core, the runtime and the ingest
path, each module against the tests that should catch a change to it.

    python -m bench.mutation [--module NAME ...] [--json] [--jobs N] [--fail-under PERCENT]

Each module runs in a folder of its own, ``mutants/<module>/``, where mutmut finds the
package and the tests (links to the work tree) and a ``pyproject.toml`` that is this
project's with ``[tool.mutmut]`` completed by the module's file and test selection
(:data:`TARGETS`). mutmut copies the package into ``mutants/<module>/mutants/``, runs the
module's tests once to learn which tests call which function, then runs each mutant
against the tests that call its function only. Every run starts from a fresh copy: a
verdict kept from an earlier run could stand for tests that have changed since.

The score is killed / (total - equivalent): a mutant is killed when a test failed, timed
out or crashed with it; it survives when the tests passed or no selected test calls its
function. Mutants that cannot change behaviour are listed, each with its reason, in
``bench/mutation_equivalent.txt`` and left out of the score. ``--module`` takes a name
from :data:`TARGETS` or a group (``engine``); with ``--json`` the last line is one JSON
object. ``cd mutants/<module> && mutmut show NAME`` (or ``mutmut browse``) shows a
mutant after a run.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench._common import machine

__all__ = ["TARGETS", "ModuleResult", "Mutant", "Target", "main", "run_target"]

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "mutants"
EQUIVALENT_FILE = ROOT / "bench" / "mutation_equivalent.txt"

#: Left out of every selection: tests that start ``python -m penchant``, servers or
#: browsers (a subprocess imports the package without mutmut's trampolines, so it neither
#: kills a mutant nor tells mutmut which tests call what), and the ``slow`` marker.
NOT_SLOW = "not slow and not browser"
#: mutmut runs a mutant against every selected test that calls its function: on the
#: request path that is hundreds of tests, and each survivor would cost all of them.
#: With a cap, a mutant runs against ``cap`` of those tests, taken from the target's test
#: files in turn, in the order listed (see :func:`spread`).
REQUEST_PATH_CAP = 12


@dataclass(frozen=True)
class Target:
    """One module under mutation, and the tests its mutants are run against."""

    name: str
    path: str
    #: Test files or folders, the most telling first (the order :func:`spread` takes).
    tests: tuple[str, ...]
    #: mutmut's names of the functions to mutate (``fold``, ``Store.record``); empty:
    #: every function of the file.
    functions: tuple[str, ...] = ()
    #: At most this many tests per mutant (see :data:`REQUEST_PATH_CAP`); 0: all.
    cap: int = 0
    #: Also the tests' PostgreSQL cases. Left out unless the module has code of its own
    #: for PostgreSQL: each such case creates a database, which made a module's run five
    #: times longer for no more mutants killed.
    postgresql: bool = False
    #: A pytest ``-k`` expression that narrows ``tests`` further.
    keyword: str = ""
    note: str = ""

    @property
    def module(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")

    def pytest_args(self) -> list[str]:
        """The test selection (mutmut's ``pytest_add_cli_args_test_selection``)."""
        keywords = [f"({self.keyword})"] if self.keyword else []
        if not self.postgresql:
            keywords.insert(0, "not postgresql")
        args = ["-m", NOT_SLOW]
        if keywords:
            args += ["-k", " and ".join(keywords)]
        return [*args, *self.tests]

    def plugin_args(self) -> list[str]:
        """Arguments of every pytest run of this target: this module as a plugin, the cap."""
        if not self.cap:
            return []
        order = ",".join(self.tests)
        return ["-p", "bench.mutation", f"--mutation-cap={self.cap}", f"--mutation-order={order}"]

    def patterns(self) -> list[str]:
        """The mutant names mutmut is asked to run (shell-style patterns)."""
        if not self.functions:
            return [f"{self.module}.*"]
        return [f"{self.module}.{_mangled(name)}__mutmut_*" for name in self.functions]

    def selects(self, mutant: str) -> bool:
        if not self.functions:
            return mutant.startswith(self.module + ".")
        key = mutant.rpartition(".")[2].partition("__mutmut_")[0]
        return key in {_mangled(name) for name in self.functions}


def _mangled(function: str) -> str:
    """mutmut's key of a function: ``x_fold``, or ``xǁStoreǁrecord`` for a method."""
    owner, _, name = function.rpartition(".")
    return f"xǁ{owner}ǁ{name}" if owner else f"x_{name}"


#: The middleware tests run each case on four hosts, two of each protocol; the core and
#: the endpoints are the same code under all four, so one host of each protocol.
ONE_HOST_PER_PROTOCOL = "not flask and not fastapi"

#: The write path of ``storage/store.py``: ``Store.record`` and what it calls to insert
#: interactions, dead-letter the bad ones and apply affinity deltas, on both databases.
STORE_INGEST = (
    "SQLiteBatch.per_row",
    "SQLiteBatch.as_json",
    "SQLiteBatch.insert",
    "_naive_utc",
    "sqlite_time",
    "_is_unavailable",
    "_is_transient",
    "describe_error",
    "_json_text",
    "_payload",
    "_payload_of",
    "_pg_number_array",
    "_pg_text_array",
    "_copy_text",
    "_delta_copy_text",
    "Store.record",
    "Store._row",
    "Store._sqlite_row",
    "Store._sqlite_insert",
    "Store._insert_interactions",
    "Store._record_batch",
    "Store._ensure_staging",
    "Store._copy_interactions",
    "Store._copy_into",
    "Store._record_rows",
    "Store._dead_letter",
    "Store._build_affinity_upsert",
    "Store._apply_deltas",
    "Store._apply_deltas_sqlite",
    "Store._apply_deltas_set_based",
)


def _engine(module: str, *more: str, cap: int = 0) -> Target:
    """An engine module: its own unit tests first, then the rest of tests/engine."""
    own = f"tests/engine/test_{module}.py"
    first = (own,) if (ROOT / own).exists() else ()
    return Target(f"engine.{module}", f"penchant/engine/{module}.py", (*first, *more), cap=cap)


TARGETS: tuple[Target, ...] = (
    _engine("affinity", "tests/engine"),
    _engine("catalog", "tests/engine"),
    _engine("consent", "tests/middleware/test_identity.py", "tests/privacy/test_rules.py"),
    _engine("cooccurrence", "tests/engine"),
    _engine("events", "tests/engine", "tests/middleware/test_validation.py"),
    _engine("experiments", "tests/engine", "tests/test_service_report.py"),
    _engine(
        "fingerprint",
        "tests/middleware/test_hot_path.py",
        "tests/privacy/test_matrix.py",
        cap=REQUEST_PATH_CAP,
    ),
    _engine("privacy", "tests/privacy/test_rules.py", "tests/middleware/test_hot_path.py"),
    _engine("ranking", "tests/engine"),
    _engine("report", "tests/middleware/test_dashboard.py"),
    _engine(
        "validation",
        "tests/middleware/test_validation.py",
        "tests/middleware/test_hot_path.py",
        "tests/middleware/test_beacon.py",
        cap=REQUEST_PATH_CAP,
    ),
    Target(
        "middleware.core",
        "penchant/middleware/core.py",
        (
            "tests/middleware/test_page_views.py",
            "tests/middleware/test_personalization.py",
            "tests/middleware/test_identity.py",
            "tests/middleware/test_hot_path.py",
            "tests/middleware/test_deferred_views.py",
            "tests/privacy/test_matrix.py",
            "tests/privacy/test_visitor_controls.py",
            "tests/middleware/test_protocols.py",
            "tests/middleware/test_crawlers.py",
            "tests/security/test_cookies.py",
            "tests/security/test_key_rotation.py",
            "tests/security/test_proxy_warning.py",
            "tests/privacy/test_rules.py",
        ),
        cap=REQUEST_PATH_CAP,
        keyword=ONE_HOST_PER_PROTOCOL,
    ),
    Target(
        "middleware.endpoints",
        "penchant/middleware/endpoints.py",
        (
            "tests/middleware/test_endpoints.py",
            "tests/middleware/test_beacon.py",
            "tests/privacy/test_visitor_controls.py",
            "tests/middleware/test_dashboard.py",
            "tests/security/test_cross_site.py",
            "tests/security/test_operator_credentials.py",
            "tests/security/test_beacon_policy.py",
        ),
        cap=REQUEST_PATH_CAP,
        keyword=ONE_HOST_PER_PROTOCOL,
    ),
    Target(
        "service",
        "penchant/service.py",
        (
            "tests/test_service_freshness.py",
            "tests/test_service_holdout.py",
            "tests/test_service_ranked_memo.py",
            "tests/test_service_report.py",
            "tests/middleware/test_personalization.py",
            "tests/middleware/test_deferred_views.py",
            "tests/middleware/test_exposures.py",
            "tests/middleware/test_page_views.py",
            "tests/middleware/test_beacon.py",
            "tests/privacy/test_visitor_controls.py",
            "tests/privacy/test_stored_data.py",
        ),
        cap=REQUEST_PATH_CAP,
        keyword=ONE_HOST_PER_PROTOCOL,
    ),
    Target(
        "storage.writer",
        "penchant/storage/writer.py",
        ("tests/storage/test_writer.py", "tests/middleware/test_deferred_views.py"),
        cap=REQUEST_PATH_CAP,
        keyword=ONE_HOST_PER_PROTOCOL,
    ),
    Target(
        "storage.store",
        "penchant/storage/store.py",
        (
            "tests/storage/test_store_record.py",
            "tests/storage/test_sqlite_batch.py",
            "tests/storage/test_store_copy.py",
            "tests/storage/test_writer.py",
        ),
        functions=STORE_INGEST,
        cap=REQUEST_PATH_CAP,
        postgresql=True,
        note="the write path only: Store.record and what it calls",
    ),
)

#: mutmut's exit codes of a mutant's test run, as ``mutmut results`` names them.
KILLED = frozenset({"killed", "timeout", "segfault", "caught by type check"})


@dataclass(frozen=True)
class Mutant:
    name: str
    status: str
    line: int
    change: str
    reason: str = ""

    def where(self, path: str) -> str:
        return f"{path}:{self.line}"


@dataclass
class ModuleResult:
    name: str
    path: str
    total: int
    killed: int
    equivalent: int
    score: float | None
    seconds: float
    statuses: dict[str, int]
    survived: list[Mutant] = field(default_factory=list)
    equivalents: list[Mutant] = field(default_factory=list)
    #: lines of bench/mutation_equivalent.txt naming a mutant that is gone or was killed
    stale_equivalents: list[str] = field(default_factory=list)
    note: str = ""
    error: str = ""


# --------------------------------------------------------------------------- config
def _base_config() -> tuple[str, dict[str, Any]]:
    """The project's pyproject.toml without its ``[tool.mutmut]`` table, and that table."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    table = tomllib.loads(text).get("tool", {}).get("mutmut", {})
    kept: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("["):
            inside = line.strip() == "[tool.mutmut]"
        if not inside:
            kept.append(line)
    return "\n".join(kept).rstrip() + "\n", dict(table)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


SNAPSHOT = ("penchant", "tests")


def _snapshot(folder: Path, ref: str | None) -> None:
    """The package and the tests as they are now (``ref`` None) or at commit ``ref``:
    the run, and the lines it reports, are not moved by edits made while it runs."""
    if ref is None:
        ignore = shutil.ignore_patterns("__pycache__", "node_modules", "*.db*")
        for name in SNAPSHOT:
            shutil.copytree(ROOT / name, folder / name, ignore=ignore)
        return
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, *SNAPSHOT],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")


def prepare(target: Target, ref: str | None = None) -> Path:
    """A fresh working folder for ``target``: a copy of the package and the tests, and a
    pyproject.toml whose ``[tool.mutmut]`` names the module's file and tests."""
    folder = WORK / target.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    _snapshot(folder, ref)
    pyproject, table = _base_config()
    table["source_paths"] = ["penchant"]
    table["only_mutate"] = [target.path]
    table["pytest_add_cli_args"] = [*table.get("pytest_add_cli_args", []), *target.plugin_args()]
    check = list(table.get("type_check_command", []))
    if check[:1] == ["mypy"]:
        # one cache for every module: the package's imports are checked once
        check.insert(1, f"--cache-dir={WORK / '.mypy_cache'}")
        table["type_check_command"] = check
    table["pytest_add_cli_args_test_selection"] = [
        *table.get("pytest_add_cli_args_test_selection", []),
        *target.pytest_args(),
    ]
    lines = ["", "[tool.mutmut]", *(f"{k} = {_toml_value(v)}" for k, v in table.items())]
    (folder / "pyproject.toml").write_text(pyproject + "\n".join(lines) + "\n", encoding="utf-8")
    return folder


# --------------------------------------------------------------------------- results
def load_equivalents(path: Path = EQUIVALENT_FILE) -> dict[str, str]:
    """``mutant name: reason`` lines; ``#`` starts a comment line."""
    found: dict[str, str] = {}
    if not path.exists():
        return found
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, reason = line.partition(": ")
        if not sep or not reason.strip():
            raise SystemExit(f"{path}:{number}: expected 'MUTANT NAME: reason', got {raw!r}")
        found[name.strip()] = reason.strip()
    return found


def _functions(text: str) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Top-level functions and methods of top-level classes, by mutmut's key."""
    found: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    functions = ast.FunctionDef | ast.AsyncFunctionDef
    for node in ast.parse(text).body:
        if isinstance(node, functions):
            found[node.name] = node
            found[f"x_{node.name}"] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, functions):
                    found[item.name] = item
                    found[f"xǁ{node.name}ǁ{item.name}"] = item
    return found


def _lines(node: ast.AST, source: list[str]) -> list[str]:
    start, end = node.lineno, node.end_lineno or node.lineno  # type: ignore[attr-defined]
    return source[start - 1 : end]


class _Diffs:
    """Where each mutant changes the module, read from mutmut's copy of the module: the
    unmutated function (``<key>__mutmut_orig``) against the mutant (``<key>__mutmut_N``)."""

    def __init__(self, original: Path, mutated: Path) -> None:
        self._original_text = original.read_text(encoding="utf-8").splitlines()
        self._original = _functions("\n".join(self._original_text))
        self._mutated_text = mutated.read_text(encoding="utf-8").splitlines()
        self._mutated = _functions("\n".join(self._mutated_text))

    def locate(self, mutant: str) -> tuple[int, str]:
        generated = mutant.rpartition(".")[2]
        key = generated.partition("__mutmut_")[0]
        orig = self._mutated.get(f"{key}__mutmut_orig")
        changed = self._mutated.get(generated)
        source = self._original.get(key)
        if orig is None or changed is None or source is None:
            return 0, "(not found in mutmut's copy)"
        before = _lines(orig, self._mutated_text)
        after = _lines(changed, self._mutated_text)
        after[0] = after[0].replace(changed.name, orig.name, 1)
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=before, b=after).get_opcodes():
            if tag == "equal":
                continue
            old = " / ".join(line.strip() for line in before[i1:i2]) or "(nothing)"
            new = " / ".join(line.strip() for line in after[j1:j2]) or "(removed)"
            return source.lineno + i1, f"{old}  ->  {new}"
        return source.lineno, "(no textual change)"


def collect(target: Target, folder: Path, equivalents: dict[str, str]) -> ModuleResult:
    """Read mutmut's verdicts for ``target`` from its working folder."""
    from mutmut.stats import status_by_exit_code

    meta = folder / "mutants" / (target.path + ".meta")
    exit_codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))[
        "exit_code_by_key"
    ]
    verdicts = {
        name: str(status_by_exit_code[code])
        for name, code in exit_codes.items()
        if target.selects(name)
    }
    diffs = _Diffs(folder / target.path, folder / "mutants" / target.path)
    result = ModuleResult(
        name=target.name,
        path=target.path,
        total=len(verdicts),
        killed=sum(status in KILLED for status in verdicts.values()),
        equivalent=0,
        score=None,
        seconds=0.0,
        statuses=dict(sorted(Counter(verdicts.values()).items())),
        note=target.note,
    )
    for name, status in sorted(verdicts.items(), key=lambda kv: _mutant_order(kv[0])):
        if status in KILLED:
            if name in equivalents:
                result.stale_equivalents.append(f"{name}: killed ({status})")
            continue
        line, change = diffs.locate(name)
        if name in equivalents:
            result.equivalents.append(Mutant(name, status, line, change, equivalents[name]))
        else:
            result.survived.append(Mutant(name, status, line, change))
    module_prefix = target.module + "."
    result.stale_equivalents += [
        f"{name}: no such mutant"
        for name in equivalents
        if name.startswith(module_prefix) and name not in verdicts
    ]
    result.equivalent = len(result.equivalents)
    scored = result.total - result.equivalent
    result.score = round(100.0 * result.killed / scored, 1) if scored else None
    return result


def _mutant_order(name: str) -> tuple[str, int]:
    key, _, number = name.rpartition("__mutmut_")
    return key, int(number) if number.isdigit() else 0


# --------------------------------------------------------------------------- running
def run_target(
    target: Target, *, jobs: int, equivalents: dict[str, str], ref: str | None = None
) -> ModuleResult:
    """Run mutmut over one module in a fresh working folder; its output goes to
    ``mutants/<module>/mutmut.log``."""
    started = time.monotonic()
    folder = prepare(target, ref)
    log = folder / "mutmut.log"
    command = [
        sys.executable,
        "-c",
        "from mutmut.__main__ import cli; cli()",
        "run",
        "--max-children",
        str(jobs),
        *target.patterns(),
    ]
    with log.open("w", encoding="utf-8") as out:
        status = subprocess.run(
            command, cwd=folder, stdout=out, stderr=subprocess.STDOUT
        ).returncode
    seconds = round(time.monotonic() - started, 1)
    meta = folder / "mutants" / (target.path + ".meta")
    if status != 0 or not meta.exists():
        tail = log.read_text(encoding="utf-8", errors="replace").replace("\r", "\n")
        tail = "\n".join(line for line in tail.splitlines() if line.strip())[-3000:]
        return ModuleResult(
            name=target.name,
            path=target.path,
            total=0,
            killed=0,
            equivalent=0,
            score=None,
            seconds=seconds,
            statuses={},
            note=target.note,
            error=f"mutmut exited with {status} (see {log.relative_to(ROOT)}):\n{tail}",
        )
    result = collect(target, folder, equivalents)
    result.seconds = seconds
    return result


def select(names: Sequence[str]) -> list[Target]:
    """Targets by name, or by group (``engine`` for every ``engine.*``); all without names."""
    if not names:
        return list(TARGETS)
    chosen: list[Target] = []
    for name in names:
        found = [t for t in TARGETS if t.name == name or t.name.startswith(name + ".")]
        if not found:
            known = ", ".join(t.name for t in TARGETS)
            raise SystemExit(f"unknown module {name!r}; known: {known}")
        chosen += [t for t in found if t not in chosen]
    return chosen


# --------------------------------------------------------------------------- report
def _percent(score: float | None) -> str:
    return "   -  " if score is None else f"{score:5.1f}%"


def report(results: Iterable[ModuleResult], seconds: float, command: str) -> str:
    results = list(results)
    out = [f"mutation testing (mutmut), {command}", ""]
    out.append(
        f"{'module':<22} {'score':>6}  {'killed':>6} {'total':>6} {'equiv':>5} "
        f"{'survived':>8} {'seconds':>7}"
    )
    for r in results:
        if r.error:
            out.append(f"{r.name:<22}  error  (see below)")
            continue
        out.append(
            f"{r.name:<22} {_percent(r.score)}  {r.killed:>6} {r.total:>6} {r.equivalent:>5} "
            f"{len(r.survived):>8} {r.seconds:>7.0f}"
        )
    killed = sum(r.killed for r in results)
    scored = sum(r.total - r.equivalent for r in results)
    overall = round(100.0 * killed / scored, 1) if scored else None
    out.append(
        f"{'all':<22} {_percent(overall)}  {killed:>6} {scored:>6}"
        f" {'':>5} {sum(len(r.survived) for r in results):>8} {seconds:>7.0f}"
    )
    for r in results:
        out.append("")
        if r.error:
            out.append(f"{r.name}: {r.error}")
            continue
        note = f"; {r.note}" if r.note else ""
        counts = ", ".join(f"{n} {status}" for status, n in r.statuses.items())
        out.append(f"{r.name} ({r.path}{note}): {counts}")
        for m in r.survived:
            tag = "" if m.status == "survived" else f" [{m.status}]"
            out.append(f"  {m.where(r.path)}  {m.change}{tag}  ({m.name})")
        for m in r.equivalents:
            out.append(f"  equivalent {m.where(r.path)}  {m.change}  ({m.name}: {m.reason})")
        for line in r.stale_equivalents:
            out.append(f"  stale entry in {EQUIVALENT_FILE.relative_to(ROOT)}: {line}")
    return "\n".join(out)


# --------------------------------------------------------------------------- pytest plugin
# Loaded into a target's pytest runs (``-p bench.mutation``) when it has a cap; it acts
# only in the run of a mutant, whose name mutmut puts in MUTANT_UNDER_TEST.
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bench.mutation")
    group.addoption("--mutation-cap", type=int, default=0, help="tests per mutant; 0: all")
    group.addoption("--mutation-order", default="", help="test paths, comma-separated")


def spread(items: Sequence[pytest.Item], order: Sequence[str]) -> list[pytest.Item]:
    """The tests one file at a time, in turn, files in ``order``; in each file the first
    case of every test (in file order) before the second case of any."""
    by_file: dict[str, list[pytest.Item]] = {}
    for item in sorted(items, key=lambda item: item.nodeid):
        by_file.setdefault(item.nodeid.partition("::")[0], []).append(item)

    def file_rank(path: str) -> tuple[int, str]:
        first = (i for i, p in enumerate(order) if path == p or path.startswith(p + "/"))
        return next(first, len(order)), path

    queues: list[list[pytest.Item]] = []
    for path in sorted(by_file, key=file_rank):
        cases: Counter[str] = Counter()
        keyed: list[tuple[int, int, str, pytest.Item]] = []
        for item in by_file[path]:
            test = item.nodeid.partition("[")[0]
            keyed.append((cases[test], item.location[1] or 0, item.nodeid, item))
            cases[test] += 1
        queues.append([item for *_, item in sorted(keyed, key=lambda k: k[:3])])
    rounds = itertools.zip_longest(*queues)
    return [item for turn in rounds for item in turn if item is not None]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cap = int(config.getoption("mutation_cap"))
    if not cap or "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", "") or len(items) <= cap:
        return
    order = [p.rstrip("/") for p in str(config.getoption("mutation_order")).split(",") if p]
    ranked = spread(items, order)
    config.hook.pytest_deselected(items=ranked[cap:])
    items[:] = ranked[:cap]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.mutation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="NAME",
        help="a module or group to run (repeatable); default: all",
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="mutants tested at once (default: the number of cores)",
    )
    parser.add_argument(
        "--ref",
        default=None,
        help="test the package and tests of this commit (default: the work tree)",
    )
    parser.add_argument(
        "--fail-under",
        type=float,
        default=None,
        metavar="PERCENT",
        help="exit 1 when a module scores below PERCENT",
    )
    args = parser.parse_args(argv)
    targets = select(args.module)
    equivalents = load_equivalents()
    command = "python -m bench.mutation " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.monotonic()
    results: list[ModuleResult] = []
    for target in targets:
        print(f"{target.name}: mutmut over {target.path} ...", file=sys.stderr, flush=True)
        result = run_target(target, jobs=args.jobs, equivalents=equivalents, ref=args.ref)
        print(
            f"{target.name}: {_percent(result.score).strip()} in {result.seconds:.0f} s"
            if not result.error
            else f"{target.name}: failed",
            file=sys.stderr,
            flush=True,
        )
        results.append(result)
    seconds = round(time.monotonic() - started, 1)
    print(report(results, seconds, command.strip()))
    failed = [r for r in results if r.error]
    low = [
        r
        for r in results
        if args.fail_under is not None and r.score is not None and r.score < args.fail_under
    ]
    if args.json:
        payload = {
            "command": command.strip(),
            "seconds": seconds,
            "jobs": args.jobs,
            "machine": machine(postgres=False),
            "modules": [asdict(r) for r in results],
        }
        print(json.dumps(payload, sort_keys=True, ensure_ascii=False))
    return 1 if failed or low else 0


if __name__ == "__main__":
    sys.exit(main())
