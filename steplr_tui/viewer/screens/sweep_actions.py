"""The dashboard's sweep actions (a mixin of the screen): ctrl+g opens the newest sweep's
view, or the form that starts one; a trial chosen there is attached to."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from steplr_tui.runfolder.paths import resolve_runs_dir

if TYPE_CHECKING:  # pragma: no cover
    from steplr_tui.viewer.screens.dashboard import DashboardScreen as _Base
else:
    _Base = object


class SweepActions(_Base):
    def action_sweeps(self) -> None:
        """The newest sweep's view, or the form that starts one."""
        from steplr_tui.study.spec import list_sweeps

        runs_dir = self.runs_dir or resolve_runs_dir(None)
        sweeps = [(folder, spec) for folder, spec in list_sweeps(runs_dir) if spec is not None]
        if sweeps:
            self.open_sweep(*sweeps[0])
            return
        from steplr_tui.viewer.screens.sweep_form import NewSweepScreen

        def started(result) -> None:
            if result is not None:
                self.open_sweep(*result)

        self.app.push_screen(NewSweepScreen(self), callback=started)

    def open_sweep_folder(self, folder: Path) -> None:
        from steplr_tui.study.space import SpaceError
        from steplr_tui.study.spec import read_spec

        try:
            self.open_sweep(folder, read_spec(folder))
        except SpaceError as exc:
            self.notify(str(exc), title="Sweep", severity="error", markup=False)

    def open_sweep(self, folder: Path, spec: Any, source: Any = None) -> None:
        """The sweep's view; a trial chosen there is attached to. `source` replaces the
        watcher of its study (tests give a fixed snapshot)."""
        from steplr_tui.viewer.screens.sweep import SweepScreen
        from steplr_tui.viewer.sweep_source import SweepSource

        cursors = self.sweep_cursors

        def closed(choice) -> None:
            if choice is not None and choice.attach is not None:
                cursors[str(folder)] = choice.trial
                self.attach_run(choice.attach)

        screen = SweepScreen(
            folder, spec, source=source or SweepSource, select=cursors.get(str(folder))
        )
        self.app.push_screen(screen, callback=closed)
