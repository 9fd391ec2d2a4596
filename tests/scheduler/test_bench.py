"""The benchmark runs end to end on a small cluster (figures are printed, never asserted)."""

import json

from scheduler.bench import main


def test_bench_prints_its_figures_as_json(capsys):
    assert main(["--hosts", "80", "--jobs", "300", "--tenants", "7", "--repeat", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("placements_per_s", "drf_order_ms", "gang64_ms"):
        assert out[key] > 0
    assert out["placed"] + out["pending"] == 300
