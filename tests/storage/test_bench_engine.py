"""The storage benchmark runs end to end on small sizes (the full run is not for tests)."""

from __future__ import annotations

import json

import pytest

from bench.engine import main, run


def test_benchmark_measures_writes_and_reads_on_small_sizes() -> None:
    result = run(batch_rows=1_000, single_rows=100, small_rows=6_000, large_rows=12_000, calls=40)
    assert result.database == "sqlite"
    assert result.batch_rows_per_s > 0 and result.single_rows_per_s > 0
    assert result.write_ratio == pytest.approx(
        result.batch_rows_per_s / result.single_rows_per_s, rel=0.01
    )
    assert 0 < result.profile_small_p50_ms <= result.profile_small_p99_ms


def test_benchmark_cli_ends_with_one_json_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import bench.engine as engine

    real = engine.run
    monkeypatch.setattr(
        engine,
        "run",
        lambda url, **kw: real(
            url, batch_rows=500, single_rows=50, small_rows=6_000, large_rows=7_000, calls=20
        ),
    )
    assert main(["--quick", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    data = json.loads(lines[-1])
    assert {"write_ratio", "profile_ratio_p50", "profile_ratio_p99"} <= set(data)
    assert "batch / single" in "\n".join(lines[:-1])
