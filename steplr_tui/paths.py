"""Where steplr-tui keeps data: flag, else environment variable, else a per-user folder.

No torch here: the UI shows these paths before torch is imported.
"""

from __future__ import annotations

import os
from pathlib import Path


def resolve_data_dir(flag: str | None) -> Path:
    """--data-dir, else $STEPLR_TUI_DATA, else the per-user cache directory."""
    if flag:
        return Path(flag).expanduser()
    env = os.environ.get("STEPLR_TUI_DATA")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("steplr-tui")) / "data"
