"""The local schema registry's setup: which Java it takes, and the error without one."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.devtools.local_kafka import registry


def _jdk(root: Path, name: str, version: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\n")
    (home / "release").write_text(f'IMPLEMENTOR="x"\nJAVA_VERSION="{version}"\n')
    return home


@pytest.mark.parametrize(
    ("version", "release"), [("25.0.3", 25), ("17.0.15", 17), ("21", 21), ("1.8.0_392", 8)]
)
def test_java_release_reads_the_jdk_release_file(tmp_path: Path, version: str, release: int):
    assert registry.java_release(_jdk(tmp_path, "jdk", version)) == release


def test_java_release_is_none_without_a_release_file(tmp_path: Path):
    assert registry.java_release(tmp_path) is None


def test_find_java_prefers_java_home_when_new_enough(tmp_path, monkeypatch):
    home = _jdk(tmp_path, "jdk25", "25.0.1")
    monkeypatch.setenv("JAVA_HOME", str(home))
    monkeypatch.setattr(registry, "_JVM_ROOT", tmp_path / "none")
    assert registry.find_java(21) == str(home / "bin" / "java")


def test_find_java_skips_an_old_java_home_for_a_newer_jdk_in_the_jvm_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(_jdk(tmp_path, "jdk17", "17.0.15")))
    jvms = tmp_path / "jvm"
    newer = _jdk(jvms, "temurin-25", "25.0.3")
    _jdk(jvms, "java-17", "17.0.15")
    monkeypatch.setattr(registry, "_JVM_ROOT", jvms)
    assert registry.find_java(21) == str(newer / "bin" / "java")


def test_without_a_new_enough_java_the_error_names_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(_jdk(tmp_path, "jdk17", "17.0.15")))
    monkeypatch.setattr(registry, "_JVM_ROOT", tmp_path / "none")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(registry.RegistryStartError) as error:
        registry.find_java(21)
    message = str(error.value)
    assert "needs Java 21+" in message
    assert "JAVA_HOME" in message
    assert "jdk17 (Java 17)" in message
