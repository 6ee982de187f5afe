"""``kafka-esm serve`` as a child process of a test: start, boto3 client, stop or kill.

The fixture ``kafka_esm_serve`` (runtime.testing.plugin) starts one per call and stops it
when the test ends; the class also works on its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from runtime.devtools.processes import LOOPBACK, die_with_parent, free_ports

_READY_TIMEOUT_S = 60.0


class ServeProcess:
    """One ``kafka-esm serve`` on a free loopback port over ``state_dir``."""

    def __init__(
        self,
        state_dir: Path,
        functions: Mapping[str, str],
        *,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.functions = dict(functions)
        self.extra_args = list(extra_args)
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd or Path.cwd()
        self.port = free_ports(1)[0]
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """``serve``'s own stderr (each mapping's poller logs to its own file)."""
        return self.state_dir / "serve.log"

    def start(self) -> ServeProcess:
        """Start and wait until ``GET /health`` answers 200 (the stored mappings are back)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "runtime.cli.main", "serve", "--port", str(self.port)]
        argv += ["--state-dir", str(self.state_dir), "--local-only", *self.extra_args]
        for name, spec in self.functions.items():
            argv += ["--function", f"{name}={spec}"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads run in the child
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"kafka-esm serve exited: {self.log_tail()}")
            if self.health() is not None:
                return
            time.sleep(0.1)
        raise RuntimeError(f"kafka-esm serve not ready in {_READY_TIMEOUT_S:g}s: {self.log_tail()}")

    def health(self) -> dict[str, Any] | None:
        """``GET /health``'s body when ready, else None."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:  # noqa: S310 - http on loopback
                body: dict[str, Any] = json.loads(response.read())
                return body
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def client(self, region: str = "us-east-1") -> Any:
        """A boto3 Lambda client pointed at this server (dummy credentials)."""
        return boto3.client(
            "lambda",
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id="kafka-esm",
            aws_secret_access_key="kafka-esm",  # noqa: S106 - a placeholder, never checked
            config=Config(retries={"max_attempts": 1}),
        )

    def stop(self, timeout_s: float = 90) -> int:
        """SIGTERM: every poller drains and commits, then ``serve`` exits; its exit code."""
        process = self.process
        if process is None or process.poll() is not None:
            return process.returncode if process else 0
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RuntimeError(f"kafka-esm serve ignored SIGTERM: {self.log_tail()}") from None

    def kill(self) -> None:
        """SIGKILL ``serve`` (its pollers die with it: PR_SET_PDEATHSIG)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_tail(self, chars: int = 3000) -> str:
        """The end of ``serve``'s log, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"
