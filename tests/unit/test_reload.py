"""``--reload``: a local handler's code is re-imported when its files change."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.invokers.local_handler import LocalHandlerInvoker, load_handler
from runtime.invokers.reloader import HandlerReloader


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Path]:
    """A handler package ``reload_app`` with a helper module, importable from tmp_path."""
    package = tmp_path / "reload_app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text("WORD = 'old'\n")
    (package / "main.py").write_text(
        "from reload_app.helper import WORD\n\ndef handler(event, context):\n    return WORD\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield package
    sys.path.remove(str(tmp_path))
    for name in [n for n in sys.modules if n.partition(".")[0] == "reload_app"]:
        del sys.modules[name]


def _reloader(clock: Clock) -> HandlerReloader:
    return HandlerReloader("reload_app.main:handler", load_handler, clock=clock)


def test_a_saved_change_anywhere_in_the_source_root_is_picked_up(app: Path) -> None:
    clock = Clock()
    reloader = _reloader(clock)
    assert {p.name for p in reloader.watched} == {"__init__.py", "helper.py", "main.py"}
    assert reloader.current()(None, None) == "old"
    (app / "helper.py").write_text("WORD = 'new!'\n")  # a module the handler imports
    assert reloader.current()(None, None) == "old"  # not checked before the interval
    clock.now += 0.5
    assert reloader.current()(None, None) == "new!"
    assert reloader.reloads == 1
    clock.now += 0.5
    reloader.current()
    assert reloader.reloads == 1  # nothing changed since: no second reload


def test_a_broken_save_keeps_the_previous_code_until_the_next_save(
    app: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    reloader = _reloader(clock)
    (app / "main.py").write_text("def handler(event, context:\n")
    clock.now += 1
    with caplog.at_level(logging.ERROR, "runtime.invokers.reload"):
        assert reloader.current()(None, None) == "old"
    assert "still running the previous code" in caplog.text and "main.py" in caplog.text
    clock.now += 1
    caplog.clear()
    reloader.current()
    assert caplog.text == ""  # the same broken file is not retried on every check
    (app / "main.py").write_text("def handler(event, context):\n    return 'fixed'\n")
    clock.now += 1
    assert reloader.current()(None, None) == "fixed"


def test_installed_and_project_modules_are_never_watched(app: Path) -> None:
    reloader = _reloader(Clock())
    names = {str(p) for p in reloader.watched}
    assert not any("site-packages" in n or "/runtime/" in n for n in names)


def test_the_invoker_calls_the_reloaded_handler(app: Path) -> None:
    invoker = LocalHandlerInvoker("reload_app.main:handler", reload=True)
    assert invoker.invoke(b"{}", deadline_s=10).payload == b'"old"'
    (app / "main.py").write_text("def handler(event, context):\n    return 'v2'\n")
    reloader = invoker._reloader
    assert reloader is not None
    reloader._next_check = 0  # due now, without waiting
    assert invoker.invoke(b"{}", deadline_s=10).payload == b'"v2"'


def test_reload_needs_a_spec_not_a_callable() -> None:
    with pytest.raises(ValueError, match="reload=True needs a handler spec"):
        LocalHandlerInvoker(lambda event, context: None, reload=True)
