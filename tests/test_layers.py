"""Layer contracts (see STYLE.md): they turn design intentions into failing tests.

- tuigen.store and tuigen.runner never import textual or tuigen.tui;
- what the CLI and (later) the TUI import never pulls torch: only the worker does.
"""
from __future__ import annotations

import pkgutil

import pytest

from conftest import python

TORCH_FREE = ["tuigen", "tuigen.cli", "tuigen.cli.commands", "tuigen.store", "tuigen.config",
              "tuigen.experiments", "tuigen.data", "tuigen.data.catalog", "tuigen.runner.scheduler",
              "tuigen.runner.reaper", "tuigen.runner.recorder", "tuigen.runner.worker", "tuigen.tracking",
              "tuigen.viz", "tuigen.experiments.dann", "tuigen.experiments.gan", "tuigen.reports", "tuigen.reports.leaderboard",
              "tuigen.tui.app", "tuigen.tui.screens.runs", "tuigen.tui.screens.run", "tuigen.tui.screens.new_run",
              "tuigen.tui.screens.leaderboard", "tuigen.tui.screens.compare", "tuigen.tui.screens.system",
              "tuigen.tui.screens.help"]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_does_not_import_torch(module):
    banned = ("torch",) if module.startswith("tuigen.tui") else ("torch", "textual")
    res = python(f"import sys, {module}\nbad = [m for m in {banned!r} if m in sys.modules]\n"
                 "print(','.join(bad))")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "", f"{module} imports {res.stdout.strip()}"


def _modules(package: str) -> list[str]:
    pkg = __import__(package, fromlist=["_"])
    return [package] + [f"{package}.{m.name}" for m in pkgutil.walk_packages(pkg.__path__)]


def test_store_and_runner_never_import_the_tui():
    mods = _modules("tuigen.store") + [m for m in _modules("tuigen.runner")]
    code = ("import sys, importlib\n"
            f"for m in {mods!r}:\n    importlib.import_module(m)\n"
            "print(','.join(m for m in sys.modules if m.startswith(('textual', 'tuigen.tui'))))")
    res = python(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""


def test_cli_help_is_fast_and_needs_no_torch():
    res = python("import sys, time\nt = time.perf_counter()\nfrom tuigen.cli import main\n"
                 "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
                 "print('TORCH' if 'torch' in sys.modules else '', round(time.perf_counter() - t, 3))")
    assert "TORCH" not in res.stdout and "usage: tuigen" in res.stdout
