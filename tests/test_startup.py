"""torch stays off the path to the first frame."""

from __future__ import annotations

import subprocess
import sys


def test_app_and_cli_import_without_torch():
    code = (
        "import sys, steplr_tui.cli, steplr_tui.viewer.app, steplr_tui.viewer.screens.dashboard; "
        "bad = sorted(m for m in ('torch', 'torchvision') if m in sys.modules); "
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_help_does_not_import_torch():
    code = (
        "import sys, runpy\n"
        "sys.argv = ['steplr-tui', '--help']\n"
        "try:\n    runpy.run_module('steplr_tui', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().endswith("NO-TORCH")


def test_the_first_frame_imports_no_sweep_no_runs_table_and_no_run_side():
    """What only a later screen or another command needs is imported when it is asked for."""
    code = (
        "import sys, steplr_tui.cli.main, steplr_tui.viewer.app; "
        "bad = ('optuna', 'steplr_tui.study', 'steplr_tui.cli.sweep', "
        "'steplr_tui.viewer.screens.runs', 'steplr_tui.run'); "
        "print(','.join(sorted(m for m in bad if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


async def test_call_after_display_waits_for_a_frame_on_the_terminal():
    from steplr_tui.runfolder.params import TrainConfig
    from steplr_tui.viewer.app import SteplrApp

    app = SteplrApp(TrainConfig(), warm_up=False, cursor_blink=False)
    displays: list[int] = []
    called: list[int] = []
    hook = app.post_display_hook

    def counting_hook() -> None:
        displays.append(1)
        hook()

    app.post_display_hook = counting_hook  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        before = len(displays)
        app.call_after_display(lambda: called.append(len(displays)))
        await pilot.pause()
        assert called == [] or called[0] > before
        app.screen.refresh()
        for _ in range(50):
            if called:
                break
            await pilot.pause(0.02)
    assert called and called[0] > before
