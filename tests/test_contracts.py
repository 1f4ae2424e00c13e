"""The two sides of the run folder, enforced: the run side never imports Textual, the
viewer side never imports torch, and the format between them imports neither.

Like import-linter's contracts: every module of the package is in exactly one
list, so a new module has to take a side.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import steplr_tui

RUN_SIDE = {
    "steplr_tui.checkpoint",
    "steplr_tui.control",
    "steplr_tui.dataset",
    "steplr_tui.distributed",
    "steplr_tui.headless",
    "steplr_tui.jobs",
    "steplr_tui.linear_step",
    "steplr_tui.models",
    "steplr_tui.record",
    "steplr_tui.tracking",
    "steplr_tui.trainer",
}
VIEWER_SIDE = {
    "steplr_tui.app",
    "steplr_tui.controller",
    "steplr_tui.cpuwatch",
    "steplr_tui.draft",
    "steplr_tui.preview",
    "steplr_tui.run_view",
    "steplr_tui.sources",
    "steplr_tui.warmup",
    "steplr_tui.screens",
    "steplr_tui.screens.actions",
    "steplr_tui.screens.cadence",
    "steplr_tui.screens.layout",
    "steplr_tui.screens.dashboard",
    "steplr_tui.screens.export",
    "steplr_tui.screens.help",
    "steplr_tui.screens.runs",
    "steplr_tui.widgets",
    "steplr_tui.widgets.keys",
    "steplr_tui.widgets.legend",
    "steplr_tui.widgets.params",
    "steplr_tui.widgets.phases",
    "steplr_tui.widgets.plot_stack",
    "steplr_tui.widgets.plots",
    "steplr_tui.widgets.run_log",
    "steplr_tui.widgets.status_line",
}
# The format and the plain code both sides read, and the command line in front of them.
NEITHER = {
    "steplr_tui",
    "steplr_tui.cli",
    "steplr_tui.commands",
    "steplr_tui.compare",
    "steplr_tui.config",
    "steplr_tui.distributed_env",
    "steplr_tui.export",
    "steplr_tui.idx",
    "steplr_tui.launch",
    "steplr_tui.paths",
    "steplr_tui.phases",
    "steplr_tui.reader",
    "steplr_tui.runfolder",
    "steplr_tui.runs_table",
    "steplr_tui.schedule",
    "steplr_tui.series",
    "steplr_tui.text",
}


def _all_modules() -> set[str]:
    names = {"steplr_tui"}
    for info in pkgutil.walk_packages(steplr_tui.__path__, "steplr_tui."):
        if info.name != "steplr_tui.__main__":
            names.add(info.name)
    return names


def _imports(modules: list[str], banned: tuple[str, ...]) -> dict[str, list[str]]:
    """For each module, imported alone in a fresh interpreter, the banned packages it loads."""
    code = (
        "import importlib, json, subprocess, sys\n"
        f"mods, banned = {modules!r}, {banned!r}\n"
        "out = {}\n"
        "for m in mods:\n"
        "    r = subprocess.run([sys.executable, '-c', "
        "f'import {m}, sys, json; print(json.dumps(sorted(b for b in {banned!r} "
        "if b in sys.modules)))'], capture_output=True, text=True)\n"
        "    out[m] = json.loads(r.stdout or 'null') if r.returncode == 0 else [r.stderr[-300:]]\n"
        "print(json.dumps(out))\n"
    )
    # All at once first (fast); one by one only to name a culprit.
    together = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, json; {'; '.join(f'import {m}' for m in modules)}; "
            f"print(json.dumps(sorted(b for b in {banned!r} if b in sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    if json.loads(together.stdout) == []:
        return {}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return {m: bad for m, bad in json.loads(result.stdout).items() if bad}


def test_every_module_takes_a_side():
    listed = RUN_SIDE | VIEWER_SIDE | NEITHER
    assert not (RUN_SIDE & VIEWER_SIDE) and not (NEITHER & (RUN_SIDE | VIEWER_SIDE))
    assert _all_modules() == listed, "add the new module to one of the lists above"


def test_the_viewer_side_never_imports_torch():
    assert _imports(sorted(VIEWER_SIDE), ("torch", "torchvision")) == {}


def test_the_run_side_never_imports_textual():
    assert _imports(sorted(RUN_SIDE), ("textual", "textual_plotext", "plotext")) == {}


def test_the_format_and_the_shell_import_neither():
    banned = ("torch", "torchvision", "textual", "textual_plotext", "plotext")
    assert _imports(sorted(NEITHER), banned) == {}
