"""Child processes of the runtime itself (serve's pollers, ``run --processes``' members).

Below every package: the one ``preexec_fn`` that ties a child's life to its parent's, so
that no poller outlives the command that started it, even after a kill -9.
"""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """A ``preexec_fn``: the kernel SIGKILLs the child when its parent dies (Linux)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
