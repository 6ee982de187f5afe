"""The local schema registry: a real Apicurio Registry on loopback, stopped by pid."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest

from runtime.devtools import processes
from runtime.devtools.local_kafka import jars
from runtime.devtools.local_kafka.registry import LocalSchemaRegistry, RegistryInfo

pytestmark = pytest.mark.integration


def _listening(pid: int) -> list[str]:
    lines = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in lines.splitlines() if f"pid={pid}," in line]


def test_the_registry_listens_on_loopback_only(schema_registry: RegistryInfo):
    addresses = _listening(schema_registry.pid)
    assert len(addresses) == 2  # the Confluent API and Quarkus' management interface
    hosts = {address.rpartition(":")[0] for address in addresses}
    assert hosts <= {"127.0.0.1", "[::ffff:127.0.0.1]"}, addresses


def test_the_confluent_api_registers_and_serves_a_schema(schema_registry: RegistryInfo):
    schema = json.dumps({"type": "record", "name": "T", "fields": [{"name": "a", "type": "int"}]})
    request = urllib.request.Request(
        f"{schema_registry.url}/subjects/setup-check-value/versions",
        data=json.dumps({"schema": schema}).encode(),
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        schema_id = json.load(reply)["id"]
    with urllib.request.urlopen(f"{schema_registry.url}/schemas/ids/{schema_id}") as reply:
        assert json.loads(json.load(reply)["schema"]) == json.loads(schema)


def test_stop_ends_the_jvm_and_a_second_start_reuses_the_cache(tmp_path):
    cached = jars.registry_dir(jars.default_cache_dir()) / ".complete"
    registry = LocalSchemaRegistry(tmp_path)
    info = registry.start(die_with_parent=True)
    assert cached.is_file()
    stamp = cached.stat().st_mtime_ns
    assert registry.is_running()
    assert registry.stop()
    assert not processes.alive(info.pid)
    assert not registry.stop()  # nothing left to stop
    assert cached.stat().st_mtime_ns == stamp  # not downloaded again


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    import os
    import sys

    return subprocess.run(
        [sys.executable, "-m", "runtime.cli.main", "local-kafka", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "KAFKA_ESM_CACHE": str(jars.default_cache_dir())},
        check=False,
    )


def test_up_with_schema_registry_prints_its_url_and_down_stops_it(tmp_path):
    home = str(tmp_path / "cluster")
    up = _cli("up", "--schema-registry", "--home", home)
    try:
        assert up.returncode == 0, up.stderr
        (url,) = [
            line.split()[-1] for line in up.stdout.splitlines() if "SchemaRegistryURI" in line
        ]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/apis/ccompat/v7")
        with urllib.request.urlopen(f"{url}/subjects", timeout=10) as reply:
            assert json.load(reply) == []
        registry = LocalSchemaRegistry(tmp_path / "cluster-schema-registry")
        info = registry.info()
        assert info is not None and processes.alive(info.pid)
        status = _cli("status", "--home", home)
        assert url in status.stdout
    finally:
        down = _cli("down", "--home", home)
    assert "local schema registry stopped" in down.stdout
    assert not processes.alive(info.pid)
