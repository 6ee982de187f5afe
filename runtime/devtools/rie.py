"""AWS's Lambda Runtime Interface Emulator (RIE), built and run for the local loop and tests.

The RIE is Go; it is built once from a pinned module version through the Go module proxy
into the cache, then runs a Python function directory with ``awslambdaric``, the way AWS's
base images do (``aws-lambda-rie python -m awslambdaric app.handler``). A stock RIE serves
one function at ``/2015-03-31/functions/function/invocations`` whatever its name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from runtime.devtools import processes
from runtime.devtools.local_kafka.jars import default_cache_dir

RIE_MODULE = "github.com/aws/aws-lambda-runtime-interface-emulator"
# No tagged release resolves from the proxy for the current tree: pin its pseudo-version.
RIE_VERSION = "v0.0.0-20261030222936-bef5c4ba774d"
RIE_HOST = "127.0.0.1"


class RieError(RuntimeError):
    """The RIE could not be built or did not start; the message says what to check."""


def rie_dir(cache_dir: Path | None = None) -> Path:
    """Where the built binary and its Go module cache live."""
    return (cache_dir or default_cache_dir()) / "rie" / RIE_VERSION


def build_rie(cache_dir: Path | None = None, *, timeout_s: float = 600.0) -> Path:
    """``aws-lambda-rie``, built on first use with ``go install`` (GOPATH/GOBIN in the cache)."""
    home = rie_dir(cache_dir)
    binary = home / "bin" / "aws-lambda-rie"
    if binary.is_file():
        return binary
    go = shutil.which("go")
    if go is None:
        raise RieError("building the Lambda RIE needs Go (1.22+) on PATH; none was found")
    env = {
        **os.environ,
        "GOPATH": str(home / "gopath"),
        "GOBIN": str(home / "bin"),
        "GOCACHE": str(home / "gocache"),
        "GOFLAGS": "-modcacherw -buildvcs=false",
        "CGO_ENABLED": "0",
    }
    done = subprocess.run(
        [go, "install", f"{RIE_MODULE}/cmd/aws-lambda-rie@{RIE_VERSION}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0 or not binary.is_file():
        raise RieError(f"go install of {RIE_MODULE}@{RIE_VERSION} failed: {done.stderr[-2000:]}")
    return binary


def check_function_dir(function_dir: Path, handler: str) -> None:
    """ValueError naming the flag when the directory or the handler's module is missing."""
    if not function_dir.is_dir():
        raise ValueError(f"--function-dir {function_dir}: not a directory")
    module, dot, function = handler.rpartition(".")
    if not dot or not module or not function:
        raise ValueError(
            f"--function-handler {handler!r} must be 'module.function' (Lambda's handler"
            " setting, e.g. app.handler)"
        )
    path = function_dir.joinpath(*module.split("."))
    if not (path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()):
        raise ValueError(
            f"--function-handler {handler!r}: no module {module!r} in --function-dir {function_dir}"
        )


class RuntimeEmulator:
    """One RIE process running one function directory; owns its pid, stops it on exit.

    The RIE dies with its owner (PR_SET_PDEATHSIG), so no emulator outlives a killed test.
    """

    def __init__(
        self,
        function_dir: Path,
        handler: str,
        *,
        timeout_s: float = 30.0,
        environment: dict[str, str] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        check_function_dir(function_dir, handler)
        self._dir = function_dir.resolve()
        self._handler = handler
        self._timeout_s = timeout_s
        self._environment = dict(environment or {})
        self._cache_dir = cache_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0

    @property
    def endpoint_url(self) -> str:
        """The base URL for the HTTP invoker (``--endpoint-kind rie``)."""
        return f"http://{RIE_HOST}:{self._port}"

    @property
    def pid(self) -> int | None:
        """The RIE's pid while it runs."""
        return self._process.pid if self._process else None

    def start(self, *, ready_timeout_s: float = 30.0) -> str:
        """Start the RIE and wait until its port answers; return the endpoint URL."""
        binary = build_rie(self._cache_dir)
        # Both of the RIE's servers default to fixed ports another emulator may hold.
        self._port, runtime_api_port = processes.free_ports(2)
        env = {
            **os.environ,
            **self._environment,
            "LAMBDA_TASK_ROOT": str(self._dir),
            "PYTHONPATH": str(self._dir),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(max(1, round(self._timeout_s))),
        }
        self._process = subprocess.Popen(
            [
                str(binary),
                "--runtime-interface-emulator-address",
                f"{RIE_HOST}:{self._port}",
                "--runtime-api-address",
                f"{RIE_HOST}:{runtime_api_port}",
                sys.executable,
                "-m",
                "awslambdaric",
                self._handler,
            ],
            cwd=self._dir,
            env=env,
            stdin=subprocess.DEVNULL,
            preexec_fn=processes.die_with_parent,  # noqa: PLW1509 (only prctl, no locks taken)
        )
        self._wait_ready(ready_timeout_s)
        return self.endpoint_url

    def _wait_ready(self, timeout_s: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout_s
        while not processes.port_open(f"{RIE_HOST}:{self._port}"):
            if self._process.poll() is not None:
                raise RieError(f"the RIE exited with {self._process.returncode} on start")
            if time.monotonic() > deadline:
                self.stop()
                raise RieError(f"the RIE did not answer on port {self._port} in {timeout_s:g} s")
            time.sleep(0.05)

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM the RIE (and with it the runtime), SIGKILL after ``grace_s``."""
        if self._process is None:
            return
        processes.terminate(self._process.pid, grace_s)
        self._process.wait()
        self._process = None

    def __enter__(self) -> RuntimeEmulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
