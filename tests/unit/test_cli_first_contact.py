"""What a new user meets first: bad flags are named with their rule, no traceback, no hang.

Each test runs ``kafka-esm`` as a child (its exit code and output are what a user sees).
The mapping points at a closed port: nothing here needs a broker, because every refusal
must happen before the poller reaches the cluster.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from runtime.cli.main import BROKEN_PIPE_EXIT
from runtime.cli.run import emf_wanted
from tests.cli_helpers import KAFKA_ESM, kafka_esm, run_kafka_esm
from tests.conftest import REPO_ROOT

HANDLER = ("--handler", "tests.unit.sample_handlers:echo", "--metrics", "none")


def _mapping_file(path: Path, **fields: object) -> Path:
    """A valid mapping whose cluster is a closed local port, written to ``path``."""
    servers = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:1"]}}
    document = {"FunctionName": "f", "Topics": ["t1"], "StartingPosition": "LATEST"}
    path.write_text(json.dumps({**document, "SelfManagedEventSource": servers, **fields}))
    return path


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    """A valid mapping whose cluster is a closed local port."""
    return _mapping_file(tmp_path / "mapping.json")


@pytest.mark.parametrize(
    ("flag", "value", "rule"),
    [
        ("--max-concurrency", "0", "must be at least 1"),
        ("--max-concurrency", "1.5", "is not a whole number"),
        ("--function-timeout", "900", "must be from 0.001 to 840"),
        ("--drain-timeout", "-1", "must be at least 0"),
        ("--metrics-interval", "0", "must be at least 0.1"),
        ("--poller-concurrency", "0", "must be at least 1"),
        ("--poller-throughput", "0", "must be at least 1"),
        ("--catch-up", "0.5", "must be at least 1"),
        ("--prometheus-port", "70000", "must be from 0 to 65535"),
    ],
)
def test_a_number_out_of_range_is_named_with_its_rule(
    mapping: Path, flag: str, value: str, rule: str
) -> None:
    done = run_kafka_esm(kafka_esm("run", mapping, *HANDLER, flag, value))
    assert done.returncode == 2
    assert flag in done.stderr
    assert rule in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_librdkafka_setting_is_refused_before_start(mapping: Path) -> None:
    done = run_kafka_esm(
        kafka_esm("run", mapping, *HANDLER, "--consumer-config", "no.such.setting=1")
    )
    assert done.returncode == 2
    assert done.stderr.startswith("ESM_CONFIG_NOT_VALID: --consumer-config: ")
    assert "no.such.setting" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_librdkafka_value_is_refused_before_start(mapping: Path) -> None:
    done = run_kafka_esm(
        kafka_esm("run", mapping, *HANDLER, "--consumer-config", "fetch.min.bytes=lots")
    )
    assert done.returncode == 2
    assert "--consumer-config" in done.stderr
    assert "fetch.min.bytes" in done.stderr


def test_a_protocol_override_is_judged_against_the_mapping_first(tmp_path: Path) -> None:
    # SASL_PLAINTEXT alone is not a valid librdkafka client (no mechanism): the user must
    # hear the security rule it breaks, not librdkafka's complaint about GSSAPI.
    sasl = [{"Type": "BASIC_AUTH", "URI": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s"}]
    path = _mapping_file(tmp_path / "m.json", SourceAccessConfigurations=sasl)
    done = run_kafka_esm(
        kafka_esm("run", path, *HANDLER, "--consumer-config", "security.protocol=SASL_PLAINTEXT")
    )
    assert done.returncode == 2
    assert "SASL credentials without TLS" in done.stderr
    assert "GSSAPI" not in done.stderr


def test_prometheus_without_its_extra_is_one_line_and_no_hang(mapping: Path) -> None:
    # prometheus-client is installed here (dev extra); the child hides it as a base
    # install (after `make demo`) would not have it.
    script = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from runtime.cli.main import main\n"
        f"sys.exit(main(['run', '--mapping', {str(mapping)!r}, '--handler',"
        " 'tests.unit.sample_handlers:echo', '--metrics', 'none', '--prometheus-port', '0']))"
    )
    done = run_kafka_esm([sys.executable, "-c", script], timeout_s=30)
    assert done.returncode == 2
    assert "pip install 'constructs-kafka[metrics]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_version_is_the_distributions() -> None:
    done = run_kafka_esm([*KAFKA_ESM, "--version"])
    assert done.returncode == 0
    assert done.stdout.strip() == f"kafka-esm {metadata.version('constructs-kafka')}"


def test_help_shows_the_defaults() -> None:
    done = run_kafka_esm([*KAFKA_ESM, "run", "--help"])
    assert done.returncode == 0
    flat = " ".join(done.stdout.split())
    assert "batches in flight at once, one per partition at most (default: 8)" in flat
    assert "(default: 840" in flat  # --function-timeout
    assert "(default: None)" not in flat and "(default: False)" not in flat


def test_a_closed_pipe_is_not_a_traceback() -> None:
    # What `kafka-esm ... | head -1` does: the reader leaves while the command writes.
    script = (
        "import sys\n"
        "from runtime.cli import main as cli\n"
        "def chatty(args):\n"
        "    for _ in range(100_000):\n"
        "        print('x' * 100)\n"
        "    return 0\n"
        "cli.health.run = chatty\n"
        "sys.exit(cli.main(['health']))"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    child.stdout.readline()
    child.stdout.close()
    _, err = child.communicate(timeout=30)
    assert child.returncode == BROKEN_PIPE_EXIT
    assert "Traceback" not in err


def test_constructs_without_the_cdk_extra_name_the_extra() -> None:
    script = "import sys; sys.modules['aws_cdk'] = None\nimport constructs_kafka"
    done = run_kafka_esm([sys.executable, "-c", script])
    assert done.returncode == 1
    assert "pip install 'constructs-kafka[cdk]'" in done.stderr


HANDLER_FILE = """
import helper

def main(event, context):
    return helper.answer(event)
"""


CONSOLE_SCRIPT = (
    f"import sys; sys.path[0] = {str(REPO_ROOT)!r}\n"  # as the entry point: not the cwd
    "from runtime.cli.main import main\n"
    "sys.exit(main())"
)


@pytest.mark.parametrize("spec", ["app:main", "app.main", "./app.py:main", "app.py:main"])
def test_a_handler_in_the_current_folder_needs_no_pythonpath(tmp_path: Path, spec: str) -> None:
    (tmp_path / "app.py").write_text(HANDLER_FILE)
    (tmp_path / "helper.py").write_text("def answer(event):\n    return {'ok': True}\n")
    mapping = _mapping_file(tmp_path / "mapping.json", Enabled=False)  # loads, runs nothing
    argv = [sys.executable, "-c", CONSOLE_SCRIPT, "run", "--mapping", str(mapping)]
    done = subprocess.run(
        [*argv, "--handler", spec, "--metrics", "none"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_a_handler_file_that_does_not_exist_is_named(mapping: Path) -> None:
    done = run_kafka_esm(kafka_esm("run", mapping, "--handler", "./nowhere/app.py:main"))
    assert done.returncode == 2
    assert "handler='./nowhere/app.py:main'" in done.stderr
    assert "not found" in done.stderr


class _Terminal(io.StringIO):
    """Stands in for a TTY: no real part can be a terminal inside a test run."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("choice", "terminal", "emf"),
    [
        ("auto", False, True),  # a container's stdout: the log driver reads EMF
        ("auto", True, False),  # a laptop's terminal: the handler's prints stay readable
        ("emf", True, True),
        ("none", False, False),
    ],
)
def test_emf_goes_to_stdout_unless_it_is_a_terminal(choice: str, terminal: bool, emf: bool) -> None:
    stream = _Terminal() if terminal else io.StringIO()
    assert emf_wanted(choice, stream) is emf


def test_reload_without_a_local_handler_is_refused(mapping: Path) -> None:
    done = run_kafka_esm(
        kafka_esm("run", mapping, "--endpoint-url", "http://127.0.0.1:1", "--reload")
    )
    assert done.returncode == 2
    assert "--reload needs --handler" in done.stderr and "Traceback" not in done.stderr


PROVISIONED_ONLY = {"MaximumRetryAttempts": 2, "BisectBatchOnFunctionError": True}


def test_fields_aws_keeps_for_provisioned_mode_warn_once_and_still_run(tmp_path: Path) -> None:
    mapping = _mapping_file(tmp_path / "m.json", Enabled=False, **PROVISIONED_ONLY)
    done = run_kafka_esm(kafka_esm("run", mapping, *HANDLER))
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "ProvisionedPollerConfig" in line]
    assert len(warnings) == 1
    assert "MaximumRetryAttempts, BisectBatchOnFunctionError: needs provisioned mode" in warnings[0]


def test_aws_strict_refuses_what_create_event_source_mapping_refuses(tmp_path: Path) -> None:
    mapping = _mapping_file(
        tmp_path / "m.json",
        **PROVISIONED_ONLY,
        SourceAccessConfigurations=[{"Type": "BASIC_AUTH", "URI": "file:///tmp/login.json"}],
    )
    done = run_kafka_esm(kafka_esm("run", mapping, *HANDLER, "--aws-strict"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("ESM_CONFIG_NOT_VALID: ")
    assert "MaximumRetryAttempts: 2 needs provisioned mode in AWS Lambda" in done.stderr
    assert "SourceAccessConfigurations[0].URI" in done.stderr  # file:// too: all at once
    fine = _mapping_file(tmp_path / "ok.json", Enabled=False)
    assert run_kafka_esm(kafka_esm("run", fine, *HANDLER, "--aws-strict")).returncode == 0
