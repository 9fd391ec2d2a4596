import json

import pytest

from hostagent.cli import main
from hostagent.sim import ROOTS_DIR

from .conftest import FIXTURES

TOPO = FIXTURES / "topo" / "dgx_a100_8x_a100_sxm4_40g.txt"
LOG = FIXTURES / "xid" / "kernel_log_samples.txt"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_inventory_from_a_capture_as_json(capsys):
    code, out, _ = run(capsys, "inventory", "--topo", str(TOPO), "--json")
    doc = json.loads(out)
    assert code == 0 and len(doc["gpus"]) == 8 and doc["nics"][0]["name"] == "mlx5_0"


def test_inventory_human_output(capsys):
    code, out, _ = run(capsys, "inventory", "--topo", str(TOPO))
    assert code == 0 and "GPU source: topo" in out and "over NVLink" in out


def test_inventory_without_nvml_says_so(capsys):
    code, out, _ = run(capsys, "inventory")
    assert code == 0 and ("NVML unavailable" in out or "GPU source: nvml" in out)


@pytest.mark.parametrize("argv", [
    ("inventory", "--topo", "/no/such/file"),
    ("inventory", "--topo", str(LOG)),
    ("checks", "--root", "/no/such/root"),
    ("xid", "--log", "/no/such/log"),
    ("render-domain", "/no/such/spec.json"),
])
def test_bad_input_is_a_message_and_exit_2(capsys, argv):
    code, _out, err = run(capsys, *argv)
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err


def test_checks_exit_1_when_something_fails(capsys):
    code, out, _ = run(capsys, "checks", "--root", str(ROOTS_DIR / "misconfigured/thp_always"))
    assert code == 1 and "FAIL" in out and "memory.thp_madvise" in out
    code, out, _ = run(capsys, "checks", "--root", str(ROOTS_DIR / "good"), "--json")
    assert code == 0 and len(json.loads(out)) == 18


def test_xid_json_and_incremental(capsys, tmp_path):
    code, out, _ = run(capsys, "xid", "--log", str(LOG), "--json")
    assert code == 0 and json.loads(out)[0]["xid"] == 79
    state = str(tmp_path / "state.json")
    run(capsys, "xid", "--log", str(LOG), "--state", state)
    code, out, _ = run(capsys, "xid", "--log", str(LOG), "--state", state)
    assert code == 0 and "no Xid" in out


def test_render_domain(capsys, tmp_path, spec_dict):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec_dict))
    code, out, _ = run(capsys, "render-domain", str(path), "--domain-type", "test")
    assert code == 0 and out.startswith("<domain") and "type=\"test\"" in out
    spec_dict["name"] = "bad name"
    path.write_text(json.dumps(spec_dict))
    code, _, err = run(capsys, "render-domain", str(path))
    assert code == 2 and "name" in err
    path.write_text("{not json")
    assert run(capsys, "render-domain", str(path))[0] == 2


def test_run_delegates_to_the_runtime(capsys, monkeypatch):
    from hostagent import runtime
    from hostagent.agent_tasks import app

    seen = []
    monkeypatch.setattr(runtime, "main", lambda args, worker_app: seen.append(worker_app) or 0)
    assert run(capsys, "run")[0] == 0
    # the agent's Celery app is handed in: runtime does not import agent_tasks
    assert seen == [app]
