"""One host-check catalogue (``hostagent.protocol.checks``): the agent's
checks take their descriptions from it, the console lists and explains them
from it in the reader's language (whatever language the agent reported in),
and importing it loads none of the agent's drivers."""

import subprocess
import sys

from django.utils import timezone

from console.core.models import CheckResult, Host
from hostagent.protocol.checks import BY_ID, CATALOGUE

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"}


def _agent_result(check_id, status, **evidence):
    """A result as the agent reports it: English title and remediation."""
    spec = BY_ID[check_id]
    return CheckResult.objects.create(
        host=Host.objects.get(name="dgx-1"), check_id=check_id, status=status, risk=spec.risk,
        title=spec.title, remediation=spec.remediation, evidence=evidence,
        measured_at=timezone.now())


def test_the_agents_checks_are_the_catalogues_entries_in_its_order():
    from hostagent.checks import REGISTRY, run_checks

    assert [c.id for c in REGISTRY] == [spec.id for spec in CATALOGUE]
    for check in REGISTRY:
        spec = BY_ID[check.id]
        assert (check.risk, check.title, check.remediation) == (
            spec.risk, spec.title, spec.remediation)
    result = run_checks("/nonexistent-root", only=["numa.balancing_off"])[0]
    assert result.title == BY_ID["numa.balancing_off"].title


def test_importing_the_catalogue_loads_no_driver():
    code = ("import sys, hostagent.protocol.checks; "
            "print(sorted(m for m in sys.modules if m.startswith('hostagent')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    loaded = eval(out)
    assert all(m == "hostagent" or m.startswith("hostagent.protocol") for m in loaded), loaded
    assert "hostagent.protocol.checks" in loaded


def test_a_checklist_reads_in_chinese_though_the_agent_wrote_english(login, admin_user, cluster):
    _agent_result("memory.thp_madvise", "fail",
                  **{"/sys/kernel/mm/transparent_hugepage/enabled": "[always] madvise never"})
    _agent_result("firmware.baseline", "fail",
                  observed={"bios_version": "1.2", "board_name": "DGXA100"},
                  mismatches={"bios_version": {"have": "1.2", "want": "1.4"}})
    client = login(admin_user)
    html = client.get("/hosts/dgx-1/checks/", **ZH).content.decode()
    assert "透明大页 = madvise" in html  # the title, translated
    assert "transparent_hugepage=madvise on the kernel cmdline" not in html  # agent's English
    assert "并在内核命令行加上 transparent_hugepage=madvise" in html
    assert "将 BIOS/BMC/GPU 固件（或驱动）升级到基线版本" in html
    assert "高" in html and ">high<" not in html  # risk labels translated
    # Evidence as labelled key/values, never a Python dict or list.
    assert "{'" not in html and "['" not in html
    assert "<dt>bios version</dt>" in html and "<dt>want</dt>" in html
    assert "<dt>/sys/kernel/mm/transparent_hugepage/enabled</dt>" in html  # a path stays a path
    fleet = client.get("/checks/", **ZH).content.decode()
    assert "将 BIOS/BMC/GPU 固件（或驱动）升级到基线版本" in fleet
    assert "Update BIOS/BMC/GPU firmware" not in fleet


def test_in_english_it_reads_as_the_catalogue_says(login, admin_user, cluster):
    _agent_result("numa.balancing_off", "fail", **{"/proc/sys/kernel/numa_balancing": "1"})
    html = login(admin_user).get("/hosts/dgx-1/checks/",
                                 HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert BY_ID["numa.balancing_off"].remediation in html
    assert "Automatic NUMA balancing off on pinned hosts" in html
