"""The embedded model's one-time conversion, with the conversion itself replaced: what is
tested is how its folder is staged and published when several processes start at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.local import embedded_model


@pytest.fixture
def slow_conversion(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> threading.Barrier:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    both_converting = threading.Barrier(2, timeout=10)

    def convert(source: Path, out: Path) -> None:
        (out / "model.safetensors").write_text(f"from {source.name}")
        both_converting.wait()  # neither finishes before the other has started

    monkeypatch.setattr(embedded_model, "find_gguf", lambda: gguf)
    monkeypatch.setattr(embedded_model, "_convert", convert)
    return both_converting


def test_two_first_runs_at_once_both_get_the_converted_folder(
    slow_conversion: threading.Barrier, tmp_path: Path
) -> None:
    target = tmp_path / "cache" / "models" / "Model"
    results: list[Path] = []
    errors: list[BaseException] = []

    def first_run() -> None:
        try:
            results.append(embedded_model.ensure_embedded_model(target))
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    runs = [threading.Thread(target=first_run) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=20)
    assert errors == []
    assert results == [target, target]
    assert (target / "model.safetensors").read_text() == "from model.gguf"
    assert (target / ".converted").exists()
    # No staging folder is left behind.
    assert sorted(p.name for p in target.parent.iterdir()) == ["Model"]


def test_a_half_written_folder_is_replaced(
    slow_conversion: threading.Barrier, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "Model"
    target.mkdir()
    (target / "model.safetensors").write_text("truncated")

    def convert(source: Path, out: Path) -> None:  # one run: no barrier to wait at
        (out / "model.safetensors").write_text("whole")

    monkeypatch.setattr(embedded_model, "_convert", convert)
    assert embedded_model.ensure_embedded_model(target) == target
    assert (target / "model.safetensors").read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("Model")) == ["Model"]
