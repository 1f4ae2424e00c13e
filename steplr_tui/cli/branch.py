"""`steplr-tui branch RUN --at EPOCH [edit]`: a new run from a recorded run's checkpoint,
with the edit applied at that boundary as a live edit would be (run/branch.py).

By default the branch trains in the background and the dashboard attaches to it;
`--detach` only starts it, `--headless` trains it here and prints each epoch.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from steplr_tui.cli.options import command_parser, find_run_or_exit
from steplr_tui.runfolder.checkpoints import KeepError, KeepPolicy
from steplr_tui.runfolder.params import SPECS, FieldError, TrainConfig

PROG = "steplr-tui branch"


def main(argv: Sequence[str]) -> int:
    parser = command_parser(
        PROG,
        "Start a new run from a recorded run's state after an epoch, with a schedule edit "
        "applied at that boundary exactly as a live edit would be.",
    )
    parser.add_argument("run", metavar="RUN", nargs="?", help="the parent: a run folder or name")
    parser.add_argument(
        "--at", metavar="EPOCH", help="branch after this epoch (one with a kept checkpoint)"
    )
    for name in ("lr", "step_size", "gamma", "epochs"):
        spec = SPECS[name]
        what = "the branch's last epoch" if name == "epochs" else spec.help
        parser.add_argument(spec.flag, dest=name, metavar=name.upper(), help=f"{what}: {spec.rule}")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--detach", action="store_true", help="start it in the background only")
    mode.add_argument("--headless", action="store_true", help="train it here, no UI")
    parser.add_argument(
        "--keep-checkpoints", metavar="EPOCHS", help="the branch's kept checkpoints, as for a run"
    )
    parser.add_argument("--device", metavar="{" + ",".join(SPECS["device"].choices) + "}")
    parser.add_argument("--threads", metavar="THREADS")
    parser.add_argument("--data-dir", metavar="DIR", help="where MNIST is")
    parser.add_argument("--runs-dir", metavar="DIR", help="where run records are")
    ns = parser.parse_args(argv)

    def fail(message: str, code: int = 2) -> int:
        print(f"{PROG}: {message}", file=sys.stderr)
        return code

    if ns.run is None:
        return fail("give the RUN to branch from (steplr-tui --list-runs shows them)")
    if ns.at is None:
        return fail("give --at EPOCH: the epoch after which the branch starts")
    at_text = ns.at.strip()
    if not at_text.isascii() or not at_text.isdigit() or not 1 <= int(at_text) <= 1000:
        return fail(f"--at must be an epoch from 1 to 1000 (got {ns.at[:20]!r})")
    values = {}
    for name in ("lr", "step_size", "gamma", "epochs", "device", "threads"):
        text = getattr(ns, name)
        if text is None:
            continue
        try:
            values[name] = SPECS[name].parse(text, who=SPECS[name].flag)
        except FieldError as exc:
            return fail(str(exc))
    keep = None
    if ns.keep_checkpoints is not None:
        try:
            keep = KeepPolicy.parse(ns.keep_checkpoints)
        except KeepError as exc:
            return fail(str(exc))
    if ns.data_dir is not None and not ns.data_dir.strip():
        return fail("--data-dir is empty: give a folder path")
    from steplr_tui.run.branch import BranchError, create_branch, plan_branch
    from steplr_tui.run.record import RecordError
    from steplr_tui.runfolder.reader import resolve_runs_dir
    from steplr_tui.runfolder.schedule import ScheduleEdit

    parent = find_run_or_exit(parser, ns.run, ns.runs_dir)
    edit = ScheduleEdit(values.get("lr"), values.get("step_size"), values.get("gamma"))
    base = TrainConfig(
        device=values.get("device", "auto"), threads=values.get("threads", 0), data_dir=ns.data_dir
    )
    try:
        plan = plan_branch(parent, int(at_text), edit, base, values.get("epochs"))
    except BranchError as exc:
        return fail(str(exc))
    runs_dir = resolve_runs_dir(ns.runs_dir) if ns.runs_dir else parent.parent
    try:
        folder = create_branch(plan, runs_dir, keep)
    except RecordError as exc:
        return fail(str(exc), 1)
    what = f" with {edit.describe()}" if edit else " (no edit)"
    print(
        f"steplr-tui: branch {folder.name} of {plan.parent.name} after epoch {plan.epoch}{what}",
        file=sys.stderr,
    )
    if ns.headless:
        from steplr_tui.cli.commands import headless_job
        from steplr_tui.run.jobs import Job

        return headless_job(Job(plan.config, folder=folder), plan.config)
    from steplr_tui.run.launch import launch

    try:
        launched = launch(plan.config, runs_dir, folder=folder)
    except (RecordError, OSError) as exc:
        return fail(f"cannot start the branch: {exc}", 1)
    if ns.detach:
        print(
            f"steplr-tui: started {launched.name} in the background (pid {launched.pid})\n"
            f"  folder: {launched.path}\n"
            f"  watch:  steplr-tui attach {launched.name}\n"
            f"  stop:   steplr-tui stop {launched.name}"
        )
        return 0
    from steplr_tui.viewer.heap import hold_collections

    hold_collections()  # until the dashboard's first frame is out
    from steplr_tui.cli.commands import say_after
    from steplr_tui.viewer.app import SteplrApp

    app = SteplrApp(TrainConfig(), attach=launched.path, runs_dir=runs_dir)
    app.run()
    say_after(app)
    return app.return_code or 0
