"""Where steplr-tui keeps things: a flag, else an environment variable, else a per-user folder.

No torch here: the UI shows these paths before torch is imported.
"""

from __future__ import annotations

import os
from pathlib import Path


def _resolve(flag: str | None, env_var: str, user_dir: str, leaf: str) -> Path:
    if flag:
        return Path(flag).expanduser()
    env = os.environ.get(env_var)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(getattr(platformdirs, user_dir)("steplr-tui")) / leaf


def resolve_data_dir(flag: str | None) -> Path:
    """--data-dir, else $STEPLR_TUI_DATA, else the per-user cache directory."""
    return _resolve(flag, "STEPLR_TUI_DATA", "user_cache_dir", "data")


def resolve_runs_dir(flag: str | None) -> Path:
    """--runs-dir, else $STEPLR_TUI_RUNS, else the per-user data directory."""
    return _resolve(flag, "STEPLR_TUI_RUNS", "user_data_dir", "runs")


def data_dir_problem(flag: str | None) -> str | None:
    """What is wrong with a --data-dir the user typed, in one line with the fix; None when
    it is usable. A folder that does not exist is most likely a typo (training on the
    bundled sample instead would hide it); an existing folder without MNIST is fine:
    MNIST is downloaded into it, or the sample is used with a notice."""
    if flag is None:
        return None
    if not flag.strip():
        return "--data-dir is empty: give a folder path"
    path = Path(flag).expanduser()
    if path.is_dir():
        return None
    if path.exists():
        return f"--data-dir {flag} is a file, not a folder: give the folder that holds MNIST/raw/"
    return (
        f"--data-dir {flag} does not exist: check the path, or create it "
        f"(mkdir -p {flag}) to have MNIST downloaded there"
    )
