"""What a typed key costs the viewer: it is drawn without laying the screen out again
(issue 23, defect 9). The time itself is measured by benchmarks/key_latency.py."""

from __future__ import annotations

import gc
import threading
import weakref
from types import SimpleNamespace

from textual.screen import Screen
from textual.widgets import Input, Static

from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.viewer.heap import settle, settle_when_done
from steplr_tui.viewer.widgets.footer import KeyFooter
from tests.fakes import FakeTrainer
from tests.helpers import SIZE, make_app, wait_for


def spy(monkeypatch, owner: type, method: str) -> list[tuple]:
    """Records each call of `owner.method` from now on: (self, *args), in order."""
    calls: list[tuple] = []
    original = getattr(owner, method)

    def recorded(self, *args, **kwargs):
        calls.append((self, *args))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, method, recorded)
    return calls


def actions(footer: KeyFooter) -> list[str]:
    return [item.action for item in footer.items]


async def test_a_key_in_a_field_is_drawn_without_laying_the_screen_out(monkeypatch):
    app = make_app(FakeTrainer(), TrainConfig(data_dir="/d"))
    async with app.run_test(size=SIZE) as pilot:
        field = app.screen.query_one("#field-lr", Input)
        field.focus()
        await pilot.press("end")
        await pilot.pause()
        layouts = spy(monkeypatch, Screen, "_refresh_layout")
        await pilot.press("5", "5")
        await pilot.pause()
        assert field.value == "0.00155"
        assert layouts == []
        # Its text still scrolls: a value wider than the field keeps the cursor in view.
        await pilot.press(*"1" * 40)
        await pilot.pause()
        assert field.scroll_x > 0
        assert field.cursor_position - field.scroll_x <= field.content_region.width


async def test_an_error_line_that_changes_height_is_laid_out_at_its_height(monkeypatch):
    app = make_app(FakeTrainer(), TrainConfig(data_dir="/d"))
    async with app.run_test(size=SIZE) as pilot:
        field = app.screen.query_one("#field-lr", Input)
        errors = app.screen.query_one("#param-errors", Static)
        field.focus()
        await pilot.press("end", *["backspace"] * 6)
        await pilot.pause()
        assert "lr is empty" in str(errors.render())
        assert errors.region.height == 2  # laid out for its two lines
        layouts = spy(monkeypatch, Screen, "_refresh_layout")
        await pilot.press("3")  # a valid lr: the line goes, and the panel shrinks
        await pilot.pause()
        assert str(errors.render()) == ""
        assert errors.region.height == 1  # as an empty line
        assert layouts


def test_the_viewer_freezes_its_heap_only_outside_tests_and_not_its_garbage():
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    before = gc.get_freeze_count()
    try:
        settle(SimpleNamespace(is_headless=True))
        assert gc.get_freeze_count() == before  # tests share one process: nothing frozen
        kept = [[n] for n in range(10)]
        dead = weakref.ref(Cycle())  # garbage in a cycle, not collected yet
        assert dead() is not None
        settle(SimpleNamespace(is_headless=False))
        assert gc.get_freeze_count() > before
        assert dead() is None  # collected, not frozen
        assert kept
    finally:
        gc.unfreeze()


async def test_the_app_turns_collections_back_on_after_its_first_frame():
    """The command line holds them on its way to the dashboard; the app's first settle,
    scheduled after the first frame, turns them on (a viewer left without collections
    would grow for as long as it runs)."""
    from steplr_tui.viewer.heap import hold_collections

    try:
        hold_collections()
        app = make_app(FakeTrainer(), TrainConfig(data_dir="/d"))
        async with app.run_test(size=SIZE) as pilot:
            assert not gc.isenabled()
            await wait_for(pilot, gc.isenabled, timeout=10)
    finally:
        gc.enable()


def test_no_collection_runs_from_the_command_line_to_the_first_settle():
    """The command line holds collections before it imports Textual (they found next to
    nothing in 30 ms of a first frame); the first settle turns the collector back on,
    under tests too (where it freezes nothing)."""
    from steplr_tui.viewer.heap import hold_collections

    try:
        hold_collections()
        assert not gc.isenabled()
        settle(SimpleNamespace(is_headless=True))
        assert gc.isenabled()
    finally:
        gc.enable()


def test_after_a_run_of_its_own_the_viewer_freezes_once_its_thread_has_ended():
    timers: list = []
    app = SimpleNamespace(is_headless=False, set_timer=lambda _s, call: timers.append(call))
    done = threading.Event()
    before = gc.get_freeze_count()
    try:
        settle_when_done(app, done)  # the run's thread still holds (and will unfreeze) it
        assert gc.get_freeze_count() == before and len(timers) == 1
        done.set()
        timers.pop()()
        assert gc.get_freeze_count() > before and not timers
    finally:
        gc.unfreeze()


async def test_lines_added_to_a_scrolling_log_repaint_it_alone(monkeypatch):
    from steplr_tui.viewer.widgets.run_log import RunLog

    app = make_app(FakeTrainer(), TrainConfig(data_dir="/d"))
    async with app.run_test(size=SIZE) as pilot:
        log = app.screen.query_one(RunLog)
        log.add([f"line {n}" for n in range(60)])  # more than the pane shows
        log.flush()
        await pilot.pause()
        await pilot.pause()  # the scrollbar's own layout, as it comes
        assert log.show_vertical_scrollbar
        layouts = spy(monkeypatch, Screen, "_refresh_layout")
        for n in range(5):
            log.add([f"more {n}"])
            log.flush()
            await pilot.pause()
        assert layouts == []
        # As a layout would have left it: the thumb's size, and the log at its end.
        assert log.vertical_scrollbar.window_virtual_size == log.virtual_size.height == 65
        assert log.scroll_y == log.max_scroll_y
        assert "more 4" in log.lines[-1].text


async def test_the_fields_first_values_draw_the_plan_once_not_once_each(monkeypatch):
    from steplr_tui.viewer.widgets.plot_stack import PlotStack

    drawn = spy(monkeypatch, PlotStack, "draw_lr")
    app = make_app(FakeTrainer(), TrainConfig(data_dir="/d"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.screen.query_one(PlotStack).query_one("#lr-plot").planned
        assert len(drawn) <= 2  # the first frame's, and the fields' burst of 15 changes


async def test_the_footers_keys_change_by_a_repaint_not_a_restyle_or_a_layout(monkeypatch):
    from textual.dom import DOMNode
    from textual.widget import Widget

    trainer = FakeTrainer(epochs_done=1, block=True)  # a run that goes on until stopped
    app = make_app(trainer, TrainConfig(data_dir="/d"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        footer = app.screen.query_one(KeyFooter)
        assert len(footer.children) == 0  # one widget, not one for each key
        restyled = spy(monkeypatch, DOMNode, "update_node_styles")
        refreshed: list[dict] = []
        original = Widget.refresh

        def refresh(self, *regions, **kwargs):
            if self is footer:
                refreshed.append(kwargs)
            return original(self, *regions, **kwargs)

        monkeypatch.setattr(Widget, "refresh", refresh)
        await pilot.press("ctrl+r")  # a run: Stop in the footer, Start and Detach not
        await wait_for(pilot, lambda: "stop" in actions(footer))
        assert "start" not in actions(footer)
        assert not [node for node, *_ in restyled if node is footer]
        assert refreshed and not any(kwargs.get("layout") for kwargs in refreshed)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not app.screen.view.active)


async def test_the_footer_is_not_repainted_while_the_keys_it_shows_are_the_same(monkeypatch):
    app = make_app(FakeTrainer(), TrainConfig(data_dir="/d"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        footer = app.screen.query_one(KeyFooter)
        keys = actions(footer)
        refreshed = spy(monkeypatch, KeyFooter, "refresh")
        for field in ("#field-step_size", "#field-gamma", "#field-lr"):  # tab, tab, tab
            app.screen.query_one(field).focus()
            await pilot.pause()
        app.screen.refresh_bindings()
        await pilot.pause()
        assert refreshed == [] and actions(footer) == keys
        await pilot.resize_terminal(80, 24)  # narrow: some keys left out
        await wait_for(pilot, lambda: len(actions(footer)) < len(keys))
        assert refreshed


async def test_the_phase_table_is_mounted_when_first_shown():
    app = make_app(FakeTrainer(), TrainConfig(data_dir="/d"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert not app.screen.query("#phases")  # not in the first frame
        await pilot.press("f5")
        assert app.screen.query_one("#phases").display
        assert not app.screen.query_one("#log").display
        await pilot.press("f5", "f5")  # the same table, shown again
        assert len(app.screen.query("#phases")) == 1


async def test_locking_the_fields_moves_focus_once_not_field_by_field(monkeypatch):
    from steplr_tui.viewer.widgets.params import ParamPanel

    app = make_app(FakeTrainer(), TrainConfig(data_dir="/d"))
    async with app.run_test(size=SIZE) as pilot:
        panel = app.screen.query_one(ParamPanel)
        app.screen.query_one("#field-lr").focus()
        await pilot.pause()
        moves = spy(monkeypatch, Screen, "set_focus")

        def moved_to() -> list:
            return [getattr(widget, "id", None) for _screen, widget, *_ in moves]

        panel.set_running(True, live=())  # loading a run: every field locked
        await pilot.pause()
        assert moved_to() == [None] and app.screen.focused is None
        panel.set_running(False)
        app.screen.query_one("#field-epochs").focus()
        await pilot.pause()
        moves.clear()
        panel.set_running(True)  # a run: epochs locks, lr stays open and takes the focus
        await pilot.pause()
        assert moved_to() == [None, "field-lr"] and app.screen.focused.id == "field-lr"


async def test_the_first_frame_restyles_no_widget_before_it_is_mounted_nor_the_screen(monkeypatch):
    """Each widget is styled as it mounts. Restyling a field as it is built (Input and
    Select toggle classes then), or every widget at the screen's first resume, was work
    thrown away."""
    from textual.app import App

    restyled: list[tuple[object, bool]] = []
    original = App.update_styles

    def update_styles(self, node, animate=True):
        restyled.append((node, node.is_attached))
        return original(self, node, animate)

    monkeypatch.setattr(App, "update_styles", update_styles)
    app = make_app(FakeTrainer(), TrainConfig(data_dir="/d"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert restyled  # focus and the disabled momentum field restyle theirs
        assert all(attached for _node, attached in restyled)
        assert app.screen not in [node for node, _ in restyled]


async def test_locking_and_filling_the_fields_restyles_each_once(monkeypatch):
    """Locked for a run, each field was restyled for being disabled, its value, its
    validity: within one `restyled_once`, once; and the styles are the locked ones."""
    from textual.app import App

    from steplr_tui.viewer.widgets.params import ParamPanel

    app = make_app(FakeTrainer(), TrainConfig(data_dir="/d"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        panel = app.screen.query_one(ParamPanel)
        restyled = spy(monkeypatch, App, "update_styles")
        panel.set_running(True, live=())
        nodes = [node for _app, node, *_ in restyled]
        assert nodes and len(nodes) == len(set(nodes))
        fields = list(panel.query("#param-fields > *"))
        assert all(field.disabled and field.styles.opacity == 0.7 for field in fields)
        restyled.clear()
        panel.set_running(False)
        nodes = [node for _app, node, *_ in restyled]
        assert nodes and len(nodes) == len(set(nodes))
        assert all(f.styles.opacity == 1.0 for f in fields if f.id != "field-momentum")


async def test_before_the_first_frame_no_field_is_restyled_but_the_one_focused(monkeypatch):
    """Each field is styled as it mounts, as its first sync leaves it: Adam's momentum
    and a cosine's step_size and gamma locked, a drop-down's line showing its value.
    Restyled after (locked, or given its value, once mounted), each cost about 1 ms of
    the first frame."""
    from textual.app import App

    update_styles = App.update_styles
    for scheduler in ("step", "cosine"):
        restyled: list[str] = []
        shown: list[bool] = []

        def spy(self, node, animate=True, restyled=restyled, shown=shown):
            if not shown and node.id and node.id.startswith("field-"):
                restyled.append(node.id)
            elif not shown and type(node).__name__ == "ChoiceCurrent":
                restyled.append(f"{node.parent.id} line")
            return update_styles(self, node, animate)

        monkeypatch.setattr(App, "update_styles", spy)
        app = make_app(FakeTrainer(), TrainConfig(data_dir="/d", scheduler=scheduler))
        monkeypatch.setattr(app, "post_display_hook", lambda shown=shown: shown.append(True))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda shown=shown: bool(shown))
            assert app.screen.query_one("#field-momentum").disabled
            cosine = scheduler == "cosine"
            assert app.screen.query_one("#field-gamma").disabled == cosine
        assert restyled == ["field-lr"]  # focused as the screen mounts
