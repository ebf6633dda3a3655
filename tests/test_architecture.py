"""Architecture checks (docs/architecture.md): layer imports, module sizes, test imports.

Each check is a function of a repository root returning its findings as lines, tested on
small fake trees under tmp_path and run on this repository.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Dependency order: a layer may import itself and the layers before it.
LAYERS = ("core", "stats", "report", "rules", "stages")
STATS_MAY_IMPORT = ("pipeline.core.errors", "pipeline.stats")
MAX_LINES = 400
LONG_REASON = "Over 400 lines:"
MAX_LONG_MODULES = 2
TEST_HELPERS = ("tests.helpers", "tests.reference")


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    """Whether dotted `name` is one of `prefixes` or inside one."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def module_name(root: Path, path: Path) -> str:
    """Dotted module name of the file `path` under `root` (a package's __init__.py: the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path, path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) per imported name of the file, absolute, in line order.

    `from a.b import c` gives `a.b.c` (c may be a module or a member of a.b); relative
    imports are resolved against the file's package.
    """
    package = module_name(root, path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found += [
                (node.lineno, base if a.name == "*" else f"{base}.{a.name}") for a in node.names
            ]
    return sorted(found)


def layer(module: str) -> str | None:
    """The layer of a dotted `pipeline...` name (None outside the layers)."""
    parts = module.split(".")
    if parts[0] == "pipeline" and len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return None


def forbidden(importer: str, imported: str) -> str | None:
    """Why module `importer` may not import dotted name `imported`; None when it may."""
    source, target = layer(importer), layer(imported)
    if imported.split(".")[0] == "matplotlib":
        return None if source == "report" else "matplotlib is imported only under pipeline.report"
    if source is None or target is None:
        return None
    if source == "stats" and not _within(imported, STATS_MAY_IMPORT):
        return "stats imports from pipeline only pipeline.core.errors and pipeline.stats"
    if LAYERS.index(target) > LAYERS.index(source):
        return f"{source} may not import {target} (imports point down: {' <- '.join(LAYERS)})"
    own, other = importer.split(".")[2:3], imported.split(".")[2:3]
    if source == target == "stages" and other and other != own:
        return "nothing imports a stage (but its own package's modules)"
    return None


def layer_violations(root: Path) -> list[str]:
    """One line per forbidden import in a module under root/pipeline: file:line, import, why."""
    found = []
    for path in sorted((root / "pipeline").rglob("*.py")):
        importer = module_name(root, path)
        for line, imported in imports(root, path):
            why = forbidden(importer, imported)
            if why:
                rel = path.relative_to(root).as_posix()
                found.append(f"{rel}:{line} ({importer}) imports {imported}: {why}")
    return found


def long_modules(root: Path) -> tuple[list[str], list[str]]:
    """Modules under root/pipeline over MAX_LINES lines: (those giving a reason, those not)."""
    reasoned, unreasoned = [], []
    for path in sorted((root / "pipeline").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        has_reason = any(line.strip().startswith(LONG_REASON) for line in doc.splitlines())
        entry = f"{path.relative_to(root).as_posix()} ({lines} lines)"
        (reasoned if has_reason else unreasoned).append(entry)
    return reasoned, unreasoned


def size_violations(root: Path) -> list[str]:
    """One line per module over MAX_LINES without a reason; one more if too many give one."""
    reasoned, unreasoned = long_modules(root)
    found = [
        f"{m}: over {MAX_LINES} lines without '{LONG_REASON}' in its docstring" for m in unreasoned
    ]
    if len(reasoned) > MAX_LONG_MODULES:
        found.append(f"more than {MAX_LONG_MODULES} modules over {MAX_LINES} lines: {reasoned}")
    return found


def cross_test_imports(root: Path) -> list[str]:
    """One line per import, in a file under root/tests, of a `tests` module but the helpers."""
    found = []
    for path in sorted((root / "tests").rglob("*.py")):
        for line, imported in imports(root, path):
            if _within(imported, ("tests",)) and not _within(imported, TEST_HELPERS):
                found.append(f"{path.relative_to(root).as_posix()}:{line} imports {imported}")
    return found


# --- the checks on small fake trees --------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    """`files` (path relative to root -> text) written under `root`; returns root."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("path", "source", "why"),
    [
        ("pipeline/stages/a.py", "from pipeline.stages.b import run", "nothing imports a stage"),
        ("pipeline/stages/a.py", "from pipeline.stages import b", "nothing imports a stage"),
        ("pipeline/stages/claims/x.py", "from ..spells import f", "nothing imports a stage"),
        ("pipeline/stages/claims/x.py", "from pipeline.stages.claims.y import f", None),
        ("pipeline/stages/claims/x.py", "from . import y\nfrom .y import f", None),
        (
            "pipeline/stages/a.py",
            "from pipeline.rules import x\nfrom pipeline.core import io",
            None,
        ),
        ("pipeline/stages/a.py", "import matplotlib.pyplot as plt", "matplotlib"),
        ("pipeline/rules/x.py", "import matplotlib", "matplotlib"),
        ("pipeline/report/figures/km.py", "import matplotlib\nimport matplotlib.pyplot", None),
        ("pipeline/stats/cox.py", "from pipeline.core import config", "stats imports"),
        ("pipeline/stats/cox.py", "from pipeline.core.config import compose", "stats imports"),
        ("pipeline/stats/cox.py", "from pipeline.report.labels import TOTAL", "stats imports"),
        ("pipeline/stats/cox.py", "from pipeline.core.errors import E\nfrom .base import F", None),
        ("pipeline/core/io.py", "from pipeline.stats import nb2", "core may not import stats"),
        ("pipeline/core/io.py", "from pipeline.rules.months import m", "core may not import rules"),
        ("pipeline/core/io.py", "from pipeline.core.errors import E\nfrom . import config", None),
        ("pipeline/rules/x.py", "from pipeline.stages.cohort import f", "rules may not import"),
        ("pipeline/rules/x.py", "from pipeline.report.labels import INSATS", None),
        ("pipeline/report/x.py", "from pipeline.rules.months import m", "report may not import"),
        ("pipeline/report/x.py", "def f():\n    from pipeline.stages import cohort", "report may"),
        ("pipeline/report/x.py", "from pipeline.stats.cox import fit", None),
    ],
)
def test_the_layer_check_names_the_module_and_the_import(tmp_path, path, source, why):
    root = _tree(tmp_path, {path: source + "\n"})
    found = layer_violations(root)
    if why is None:
        assert found == []
    else:
        assert len(found) == 1
        assert found[0].startswith(f"{path}:")
        assert why in found[0]


def test_the_layer_check_reads_every_module_of_the_tree(tmp_path):
    root = _tree(
        tmp_path,
        {
            "pipeline/__init__.py": "",
            "pipeline/__main__.py": "import importlib\n",
            "pipeline/core/__init__.py": "",
            "pipeline/core/sql.py": "import duckdb\n",
            "pipeline/stats/__init__.py": "",
            "pipeline/stats/nb2.py": "import numpy\nfrom pipeline.core.io import atomic_path\n",
            "pipeline/stages/__init__.py": "",
            "pipeline/stages/describe.py": "from pipeline.stages import cohort, spells\n",
        },
    )
    assert layer_violations(root) == [
        "pipeline/stages/describe.py:1 (pipeline.stages.describe) imports "
        "pipeline.stages.cohort: nothing imports a stage (but its own package's modules)",
        "pipeline/stages/describe.py:1 (pipeline.stages.describe) imports "
        "pipeline.stages.spells: nothing imports a stage (but its own package's modules)",
        "pipeline/stats/nb2.py:2 (pipeline.stats.nb2) imports pipeline.core.io.atomic_path: "
        "stats imports from pipeline only pipeline.core.errors and pipeline.stats",
    ]


def _module(lines: int, docstring: str = "A module.") -> str:
    """Python source of `lines` lines: the docstring, then assignments."""
    head = f'"""{docstring}"""\n'
    return head + "".join(f"x{i} = {i}\n" for i in range(lines - head.count("\n")))


def test_the_size_check_wants_a_reason_past_400_lines_and_allows_two(tmp_path):
    reason = "One estimator.\n\nOver 400 lines: the estimator and its score are one derivation."
    files = {
        "pipeline/stats/ok.py": _module(MAX_LINES),
        "pipeline/stats/long.py": _module(MAX_LINES + 1),
        "pipeline/stats/a.py": _module(MAX_LINES + 50, reason),
        "pipeline/stats/b.py": _module(MAX_LINES + 50, reason),
    }
    root = _tree(tmp_path, files)
    assert len((root / "pipeline/stats/ok.py").read_text().splitlines()) == MAX_LINES
    assert size_violations(root) == [
        "pipeline/stats/long.py (401 lines): over 400 lines without 'Over 400 lines:' "
        "in its docstring"
    ]
    (root / "pipeline/stats/long.py").write_text(_module(MAX_LINES + 1, reason))
    found = size_violations(root)
    assert len(found) == 1
    assert found[0].startswith("more than 2 modules over 400 lines")
    (root / "pipeline/stats/b.py").write_text(_module(MAX_LINES))
    assert size_violations(root) == []


def test_the_test_import_check_allows_only_helpers_and_references(tmp_path):
    root = _tree(
        tmp_path,
        {
            "tests/test_a.py": "from tests.helpers import BASE\nfrom tests.reference import x\n",
            "tests/test_b.py": "from tests.test_a import CONF\n",
            "tests/test_c.py": "def f():\n    from tests.conftest import synth_params\n",
            "tests/helpers.py": "from tests import reference\n",
        },
    )
    assert cross_test_imports(root) == [
        "tests/test_b.py:1 imports tests.test_a.CONF",
        "tests/test_c.py:2 imports tests.conftest.synth_params",
    ]


# --- the checks on this repository ---------------------------------------------------------


def test_pipeline_imports_point_down_the_layers_only():
    found = layer_violations(ROOT)
    assert found == [], "\n".join(found)


def test_pipeline_modules_are_at_most_400_lines_but_two_with_a_reason():
    found = size_violations(ROOT)
    assert found == [], "\n".join(found)


def test_no_test_module_imports_another():
    found = cross_test_imports(ROOT)
    assert found == [], "\n".join(found)


def test_no_contract_code_is_written_in_the_pipeline_or_its_sql():
    """Care levels, ownership, insured types and FK registration kinds come from conf/codes
    (issue 17): no such value appears quoted in pipeline/ or sql/ but in the synthetic
    generator, which writes the contract's own codes."""
    import re

    from pipeline.core import config

    codes = config.compose().codes
    values = {
        *map(str, codes.vardniva), *map(str, codes.regi), *map(str, codes.forsakradtyp),
        *map(str, codes.handelse), str(codes.unknown_ownership),
    }  # fmt: skip
    quoted = re.compile("|".join(rf"""["']{re.escape(v)}["']""" for v in sorted(values)))
    root = config.ROOT
    found = []
    for path in sorted([*root.glob("pipeline/**/*.py"), *root.glob("sql/*.sql")]):
        if "stages/synth" in path.as_posix():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if quoted.search(line):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert found == []
