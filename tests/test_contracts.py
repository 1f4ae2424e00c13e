"""The architecture, enforced: import-linter's contracts (pyproject.toml), and what each
side actually loads when it is imported.

The contracts are static: the layers (the command line over the sweep's worker over
the viewer and the run side, which are independent, over the study over the run
folder's format) and the libraries each layer may not import. The tests below check
the running truth the contracts cannot see: a viewer module imported alone loads no
torch and nothing of the run side (the command line hands it what starts a run), and
`import steplr_tui` with `steplr_tui.track` loads no Textual.
"""

from __future__ import annotations

import importlib.util
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import steplr_tui

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("cli", "sweep", "viewer", "run", "study", "runfolder")
# Modules of the package outside the layers: its public face.
TOP = {"steplr_tui", "steplr_tui.__main__", "steplr_tui.lightning"}
UI = ("textual", "textual_plotext", "plotext")
TORCH = ("torch", "torchvision")


# Modules of an optional extra, importable only where it is installed.
EXTRAS = {"steplr_tui.run.lightning": "lightning"}


def _modules(package: str) -> list[str]:
    """Every module of a subpackage (the package itself included) that can be imported
    here (an extra's module only where the extra is installed)."""
    module = __import__(f"steplr_tui.{package}", fromlist=["_"])
    names = [module.__name__]
    names += [m.name for m in pkgutil.walk_packages(module.__path__, module.__name__ + ".")]
    return sorted(
        n for n in names if n not in EXTRAS or importlib.util.find_spec(EXTRAS[n]) is not None
    )


def _loaded(modules: list[str], banned: tuple[str, ...]) -> dict[str, list[str]]:
    """For each module, imported alone in a fresh interpreter, the banned packages it loads."""
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module(sys.argv[1])\n"
        f"print(json.dumps(sorted(b for b in {banned!r} if b in sys.modules)))\n"
    )
    # All at once first (fast); one by one only to name a culprit.
    together = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import {', '.join(modules)}, sys, json; "
            f"print(json.dumps(sorted(b for b in {banned!r} if b in sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    if json.loads(together.stdout) == []:
        return {}
    out = {}
    for m in modules:
        r = subprocess.run([sys.executable, "-c", code, m], capture_output=True, text=True)
        loaded = json.loads(r.stdout) if r.returncode == 0 else [r.stderr[-300:]]
        if loaded:
            out[m] = loaded
    return out


def test_import_linter_contracts_are_kept():
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(linter), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
    assert "0 broken" in result.stdout


def test_every_module_is_in_a_layer():
    layered = {m for layer in LAYERS for m in _modules(layer)}
    everything = {"steplr_tui"} | {
        info.name for info in pkgutil.walk_packages(steplr_tui.__path__, "steplr_tui.")
    }
    assert everything - layered - set(EXTRAS) <= TOP, "a new module goes in a layer's folder"


def test_the_viewer_loads_no_torch():
    assert _loaded(_modules("viewer"), TORCH) == {}


def test_the_viewer_loads_nothing_of_the_run_side():
    assert _loaded(_modules("viewer"), ("steplr_tui.run",)) == {}


def test_the_run_side_loads_no_textual():
    assert _loaded(_modules("run"), UI) == {}


def test_the_format_loads_neither_side():
    assert _loaded(_modules("runfolder"), UI + TORCH + ("optuna",)) == {}


def test_the_study_loads_neither_side_and_optuna_only_when_used():
    assert _loaded(_modules("study"), UI + TORCH + ("optuna",)) == {}


def test_the_command_line_loads_neither_until_it_runs_something():
    assert _loaded(["steplr_tui.cli"], UI + TORCH) == {}


def test_the_public_api_loads_no_textual():
    code = (
        "import sys, steplr_tui\n"
        "before = sorted(m for m in ('torch', 'textual', 'plotext') if m in sys.modules)\n"
        "track = steplr_tui.track\n"
        "import steplr_tui.run.script_run\n"
        "from steplr_tui import RunStopped, TrackingError, Run\n"
        "after = sorted(m for m in ('textual', 'textual_plotext', 'plotext') if m in sys.modules)\n"
        "print(before, after, callable(track), issubclass(RunStopped, Exception))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["[]", "[]", "True", "True"], result.stderr[-500:]
