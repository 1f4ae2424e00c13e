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
