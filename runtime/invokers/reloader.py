"""``kafka-esm run --reload``: a local handler re-imported when its source files change.

The check runs before an invocation, at most every half second, so a batch runs
entirely on the old code or entirely on the new: nothing is lost or skipped. A batch
that failed on the old code is retried by the mapping's retry policy, on the new code
once it is saved. A reload that fails (a syntax error, an import error) is logged and
the previous code keeps running until the next save.

Watched: the handler's module and every module imported from the same source root
(the folder it was imported from), never installed packages.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["HandlerReloader"]

log = logging.getLogger("runtime.invokers.reload")

CHECK_EVERY_S = 0.5
"""How often the source files' modification times are compared, at most."""

Handler = Callable[[Any, Any], Any]
Loader = Callable[[str], Handler]
_Stamp = tuple[int, int]  # st_mtime_ns, st_size


class HandlerReloader:
    """Holds the current handler of ``spec``; ``current()`` swaps in a reloaded one."""

    def __init__(
        self,
        spec: str,
        load: Loader,
        *,
        check_every_s: float = CHECK_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spec = spec
        self._load = load
        self._check_every_s = check_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._handler = load(spec)
        self._root = _source_root(self._handler)
        self._stamps = self._snapshot()
        self._next_check = clock() + check_every_s
        self.reloads = 0
        """Successful reloads so far (for tests and the log)."""

    @property
    def watched(self) -> list[Path]:
        """The source files whose change triggers a reload."""
        return sorted(self._stamps)

    def current(self) -> Handler:
        """The handler to call now: reloaded first when a watched file changed."""
        if self._clock() < self._next_check:
            return self._handler
        with self._lock:
            if self._clock() >= self._next_check:
                self._next_check = self._clock() + self._check_every_s
                changed = self._changed()
                if changed:
                    self._reload(changed)
            return self._handler

    def _changed(self) -> list[Path]:
        return [path for path, stamp in self._stamps.items() if _stamp(path) != stamp]

    def _reload(self, changed: list[Path]) -> None:
        names = ", ".join(str(p.relative_to(self._root)) for p in changed)
        removed = {n: m for n, m in list(sys.modules.items()) if self._owns(m)}
        for name in removed:
            del sys.modules[name]
        for path in changed:  # the bytecode cache trusts whole-second mtimes: drop it
            _drop_bytecode(path)
        importlib.invalidate_caches()
        try:
            handler = self._load(self._spec)
        except Exception as error:
            sys.modules.update(removed)  # the old modules stay in use, consistently
            self._stamps = self._snapshot()  # retry on the next save, not every check
            log.error(
                "reload of %s failed after %s changed: %s; still running the previous code",
                self._spec,
                names,
                error,
            )
            return
        self._handler = handler
        self._stamps = self._snapshot()
        self.reloads += 1
        log.warning("reloaded handler %s (%s changed)", self._spec, names)

    def _owns(self, module: ModuleType | None) -> bool:
        if module is None or module.__name__.partition(".")[0] in _NEVER_RELOADED:
            return False
        path = _module_file(module)
        return path is not None and _is_under(path, self._root) and not _installed(path)

    def _snapshot(self) -> dict[Path, _Stamp]:
        files = {_module_file(m) for m in list(sys.modules.values()) if self._owns(m)}
        return {path: _stamp(path) for path in files if path is not None}


def _source_root(handler: Handler) -> Path:
    """The folder the handler's top-level package (or module) was imported from."""
    module = sys.modules.get(getattr(handler, "__module__", "") or "")
    path = _module_file(module)
    if module is None or path is None:
        return Path.cwd().resolve()
    depth = module.__name__.count(".") + (1 if path.name == "__init__.py" else 0)
    root = path.parent
    for _ in range(depth):
        root = root.parent
    return root


def _module_file(module: ModuleType | None) -> Path | None:
    file = getattr(module, "__file__", None)
    if not isinstance(file, str) or not file.endswith(".py"):
        return None
    return Path(file).resolve()


_NEVER_RELOADED = frozenset({"__main__", "runtime", "constructs_kafka", "tests"})
"""This project's own packages (a checkout may be the handler's source root too)."""

_INSTALLED = {
    Path(p).resolve()
    for key in ("purelib", "platlib", "stdlib", "platstdlib")
    if (p := sysconfig.get_paths().get(key))
}


def _installed(path: Path) -> bool:
    return any(_is_under(path, folder) for folder in _INSTALLED)


def _is_under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _stamp(path: Path) -> _Stamp:
    try:
        status = path.stat()
    except OSError:
        return (-1, -1)  # deleted: a change too
    return (status.st_mtime_ns, status.st_size)


def _drop_bytecode(path: Path) -> None:
    with contextlib.suppress(OSError, NotImplementedError, ValueError):
        os.remove(importlib.util.cache_from_source(str(path)))
