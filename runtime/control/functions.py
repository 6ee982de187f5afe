"""Which function a FunctionName means under ``serve``: a local handler, an Invoke API URL,
or (unmapped) the real function in AWS, reached through boto3 as ``kafka-esm run`` does.

``--function NAME=module:function``, ``--function NAME=http://host:port`` (an Invoke API,
``sam local start-lambda`` say) or ``NAME=rie+http://host:port`` (a stock Runtime Interface
Emulator); ``--functions FILE`` gives the same as a JSON object ``{"NAME": "SPEC"}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

_HANDLER: Final = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_NAME: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
RIE_PREFIX: Final = "rie+"


class FunctionSpecError(ValueError):
    """A ``--function``/``--functions`` entry that names no handler or URL."""


@dataclass(frozen=True)
class FunctionTarget:
    """How ``kafka-esm run`` reaches one function: the flags that say so."""

    handler: str | None = None
    endpoint_url: str | None = None
    endpoint_kind: str = "lambda"

    def run_flags(self) -> list[str]:
        """The ``kafka-esm run`` flags for this target (none: AWS Lambda through boto3)."""
        if self.handler is not None:
            return ["--handler", self.handler]
        if self.endpoint_url is not None:
            return ["--endpoint-url", self.endpoint_url, "--endpoint-kind", self.endpoint_kind]
        return []


def parse_spec(name: str, spec: str, where: str) -> FunctionTarget:
    """One entry; FunctionSpecError names ``where`` it came from and the forms it may take."""
    if not _NAME.match(name):
        raise FunctionSpecError(f"{where}: function name {name!r} must be 1-64 of A-Z a-z 0-9 _ -")
    if spec.startswith(RIE_PREFIX):
        return FunctionTarget(
            endpoint_url=_url(spec[len(RIE_PREFIX) :], where), endpoint_kind="rie"
        )
    if spec.startswith(("http://", "https://")):
        return FunctionTarget(endpoint_url=_url(spec, where), endpoint_kind="invoke-http")
    if _HANDLER.match(spec):
        return FunctionTarget(handler=spec)
    raise FunctionSpecError(
        f"{where}: {spec!r} for {name} is neither a handler 'module:function' nor an"
        " Invoke API URL 'http://host:port' (or 'rie+http://host:port')"
    )


def _url(url: str, where: str) -> str:
    if not re.match(r"^https?://[^/\s]+/?$", url):
        raise FunctionSpecError(f"{where}: {url!r} must be a base URL http://host:port")
    return url.rstrip("/")


def parse_function_flags(items: Iterable[str]) -> dict[str, FunctionTarget]:
    """``--function NAME=SPEC`` values, refusing a malformed or repeated one."""
    targets: dict[str, FunctionTarget] = {}
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep:
            raise FunctionSpecError(f"--function {item!r} must be NAME=module:function or NAME=URL")
        if name in targets:
            raise FunctionSpecError(f"--function {name} is given twice")
        targets[name] = parse_spec(name, spec, f"--function {item}")
    return targets


def load_functions_file(path: Path) -> dict[str, FunctionTarget]:
    """``--functions FILE``: a JSON object of NAME to SPEC strings."""
    where = f"--functions {path}"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FunctionSpecError(f"{where}: cannot read it: {exc.strerror}") from None
    except ValueError as exc:
        raise FunctionSpecError(f"{where}: not JSON: {exc}") from None
    if not isinstance(doc, Mapping) or not all(isinstance(v, str) for v in doc.values()):
        raise FunctionSpecError(f'{where}: must be a JSON object {{"NAME": "module:function"}}')
    return {name: parse_spec(name, spec, f"{where}: {name}") for name, spec in doc.items()}


def function_name_of(name_or_arn: str) -> str:
    """The function's name in a FunctionName that may be an ARN or ``name:qualifier``."""
    if name_or_arn.startswith("arn:"):
        parts = name_or_arn.split(":")
        return parts[6] if len(parts) > 6 else name_or_arn
    return name_or_arn.split(":", maxsplit=1)[0]


def function_arn(name_or_arn: str, region: str, account: str) -> str:
    """The FunctionArn AWS answers with (the ARN itself when one was given)."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    return f"arn:aws:lambda:{region}:{account}:function:{name_or_arn}"


def aws_function_problem(name_or_arn: str, region: str) -> str | None:
    """None when AWS Lambda answers GetFunction for the function; else why it did not
    (not found, no credentials, no network), for the ResourceNotFoundException."""
    config = Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 1})
    try:
        boto3.client("lambda", region_name=region, config=config).get_function(
            FunctionName=name_or_arn
        )
    except ClientError as exc:
        return str(exc.response.get("Error", {}).get("Message") or exc)
    except BotoCoreError as exc:
        return str(exc)
    return None
