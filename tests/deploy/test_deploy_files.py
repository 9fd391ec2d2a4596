"""The deployment files verify (issue 13, part 6): systemd units pass
``systemd-analyze verify``, the compose file has every process with a health
check, and every setting the code reads from the environment is documented."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def _installed_copy(tmp_path: Path, text: str) -> str:
    """The unit as installed from this checkout: /opt/coupler is this repository
    (verify checks that ExecStart's program exists)."""
    return text.replace("/opt/coupler/.venv/bin/python", sys.executable) \
               .replace("/opt/coupler", str(ROOT))


def test_every_process_has_a_unit():
    assert {u.stem for u in UNITS} == {"coupler-web", "coupler-orchestrator", "coupler-beat",
                                       "coupler-agent"}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (apt-get install systemd)")
def test_the_systemd_units_verify(tmp_path):
    for unit in UNITS:
        (tmp_path / unit.name).write_text(_installed_copy(tmp_path, unit.read_text()))
    result = subprocess.run(["systemd-analyze", "verify", *sorted(map(str, tmp_path.glob("*")))],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "coupler" not in result.stderr, result.stderr  # no warning about our units
    # The check can fail: a unit whose program is missing does not verify.
    broken = tmp_path / "broken" / "coupler-web.service"
    broken.parent.mkdir()
    broken.write_text((tmp_path / "coupler-web.service").read_text()
                      .replace(sys.executable, "/nonexistent/python"))
    result = subprocess.run(["systemd-analyze", "verify", str(broken)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


def test_the_web_unit_migrates_before_it_starts():
    web = (DEPLOY / "systemd" / "coupler-web.service").read_text()
    assert web.index("manage.py migrate") < web.index("ExecStart=")
    assert "gunicorn" in web and "EnvironmentFile=/etc/coupler/coupler.env" in web


def test_compose_runs_every_process_with_health_checks():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"web", "orchestrator", "beat", "db", "redis"} <= set(services)
    for name in ("web", "orchestrator", "beat", "db", "redis"):
        assert services[name].get("healthcheck"), name
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["web"]["depends_on"]["migrate"]["condition"] == \
        "service_completed_successfully"


def test_the_containerfile_serves_gunicorn_with_a_health_check():
    text = (DEPLOY / "Containerfile").read_text()
    assert "gunicorn" in text and "collectstatic" in text and "HEALTHCHECK" in text
    assert re.search(r"^USER coupler$", text, re.M)


def test_every_environment_variable_the_settings_read_is_documented():
    read = set(re.findall(r'env_(?:str|bool|int|list)\(\s*"([A-Z_]+)"',
                          (ROOT / "console" / "settings.py").read_text()))
    documented = (DEPLOY / "coupler.env.example").read_text() + \
        (ROOT / "docs" / "deploy.md").read_text()
    missing = sorted(v for v in read if v not in documented)
    assert not missing, missing
