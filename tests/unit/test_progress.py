"""``local-kafka up``'s progress: phases with elapsed time, live details on a TTY only."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from itertools import count

from runtime.devtools.local_kafka.jars import _run_maven
from runtime.devtools.progress import Progress


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _clock() -> Callable[[], float]:
    ticks = count()
    return lambda: next(ticks) * 0.5


def test_phases_are_lines_with_elapsed_time_and_details_stay_off_a_pipe() -> None:
    out = io.StringIO()
    progress = Progress(out, clock=_clock())
    progress.phase("formatting")
    progress.detail("3 artifacts")
    progress.phase("starting")
    assert out.getvalue() == "[  0.5 s] formatting\n[  1.0 s] starting\n"


def test_a_tty_rewrites_one_detail_line_then_keeps_the_next_phase() -> None:
    out = FakeTTY()
    progress = Progress(out, clock=_clock())
    progress.detail("10 artifacts, 1.5 MB")
    progress.detail("2 artifacts")  # shorter: the rest of the old line is blanked
    progress.phase("formatting")
    first = "[  0.5 s]   10 artifacts, 1.5 MB"
    second = "[  1.0 s]   2 artifacts".ljust(len(first))
    assert out.getvalue() == f"\r{first}\r{second}\n[  1.5 s] formatting\n"


def test_maven_downloads_are_counted_and_its_tail_kept_for_errors() -> None:
    lines = [
        "[INFO] Scanning for projects...",
        "[INFO] Downloaded from central: https://repo/x/a.jar (12 kB at 100 kB/s)",
        "Downloaded from mirror: https://repo/x/b.jar (1.5 MB at 3 MB/s)",
        "[ERROR] Failed to execute goal",
    ]
    script = "import sys; print(" + repr("\n".join(lines)) + "); sys.exit(3)"
    heard: list[str] = []
    code, tail = _run_maven([sys.executable, "-c", script], heard.append)
    assert code == 3
    assert heard == ["1 artifacts, 0.0 MB", "2 artifacts, 1.5 MB"]
    assert tail[-1] == "[ERROR] Failed to execute goal"
