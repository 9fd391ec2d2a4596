"""Fault text from the agent in the reader's language: the Xid table's name,
meaning, likely cause and action by Xid code, and the agent's AER/KVM texts,
translated at render time; the catalogue of their translations is complete and
holds exactly the table's texts."""

import re
from pathlib import Path

from django.conf import settings
from django.utils import translation

from console.core.choices import FaultKind
from console.core.models import Host, Incident
from console.ui.faulttext import fault_text, texts, xid_catalog
from hostagent.xid import parse_line

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"}
PO = Path(settings.BASE_DIR) / "locale" / "faults" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def _msgids(text):
    ids = []
    for block in text.split("\n\n"):
        match = re.search(r'^msgid ((?:"(?:[^"\\]|\\.)*"\n?)+)', block, re.M)
        if match and not block.lstrip().startswith("#~"):
            ids.append("".join(re.findall(r'"((?:[^"\\]|\\.)*)"', match.group(1)))
                       .replace('\\"', '"').replace("\\\\", "\\"))
    return [i for i in ids if i]


def test_the_catalogue_of_fault_texts_holds_exactly_the_agents_texts():
    assert len(xid_catalog()) >= 20
    assert sorted(_msgids(PO.read_text())) == sorted(texts())
    assert "#, fuzzy" not in PO.read_text()


def test_every_fault_text_reads_in_chinese():
    with translation.override("zh-hans"):
        untranslated = [t for t in texts() if translation.gettext(t) == t]
    assert not untranslated, untranslated[:5]


def test_an_xid_reads_by_its_code_and_other_texts_by_their_words():
    aer = parse_line("pcieport 0000:40:01.1: AER: Uncorrected (Fatal) error received: "
                     "0000:41:00.0")
    with translation.override("zh-hans"):
        xid = fault_text(79, "GPU has fallen off the bus", "anything the agent sent")
        assert xid.name == "GPU 已从总线掉线"
        assert xid.action.startswith("检查系统事件日志")
        other = fault_text(None, aer.name, aer.action)
        assert other.action.startswith("未纠正的致命 PCIe 错误")
        unknown = fault_text(None, "Something the console wrote", "Look at it.")
        assert (unknown.meaning, unknown.action) == ("Something the console wrote", "Look at it.")


def test_the_incident_page_speaks_the_readers_language(login, admin_user, incident):
    client = login(admin_user)
    zh = client.get(f"/faults/{incident.pk}/", **ZH).content.decode()
    assert "GPU 已从总线掉线" in zh and "驱动无法再通过 PCIe 访问 GPU（链路断开）" in zh
    assert "Driver can no longer reach the GPU" not in zh
    en = client.get(f"/faults/{incident.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Driver can no longer reach the GPU over PCIe (link down)" in en


def test_an_aer_incident_reads_in_chinese(login, admin_user, cluster):
    event = parse_line("pcieport 0000:40:01.1: AER: Uncorrected (Fatal) error received: "
                       "0000:41:00.0")
    inc = Incident.objects.create(host=Host.objects.get(name="dgx-1"), title="AER error",
                                  fault=FaultKind.HARDWARE, raw_lines=event.line,
                                  meaning=event.name, recommended_action=event.action)
    html = login(admin_user).get(f"/faults/{inc.pk}/", **ZH).content.decode()
    assert "未纠正的致命 PCIe 错误：隔离该主机" in html
    assert "cordon the host, check the slot" not in html


def test_incident_titles_read_in_the_readers_language_everywhere(login, admin_user, cluster):
    """The title is built from the incident's fields at render time: the Xid, the host,
    the GPU and its PCI address in the reader's words; the English one stays in the API."""
    host = Host.objects.get(name="dgx-1")
    gpu = host.gpus.order_by("index").first()
    xid = Incident.objects.create(
        host=host, gpu=gpu, xid=79, fault=FaultKind.HARDWARE,
        title=f"Xid 79 on dgx-1 GPU{gpu.index} ({gpu.pci_address})",
        recommended_action="Drain the GPU, reset it or replace it.")
    # an action the console wrote itself (no catalogue entry to read it from)
    aer = Incident.objects.create(host=host, title="AER error on dgx-1",
                                  fault=FaultKind.HARDWARE,
                                  recommended_action="Drain the GPU, reset it or replace it.")
    client = login(admin_user)
    where = f"dgx-1 的 GPU{gpu.index}（{gpu.pci_address}）"
    for page in ("/faults/", f"/faults/{xid.pk}/", "/"):
        html = client.get(page, **ZH).content.decode()
        assert f"{where} 上的 Xid 79" in html, page
        assert "Xid 79 on dgx-1" not in html, page
    assert "dgx-1 上的 AER 错误" in client.get("/faults/", **ZH).content.decode()
    assert "排空该 GPU，然后重置或更换它。" in client.get(f"/faults/{aer.pk}/", **ZH).content.decode()
    en = client.get(f"/faults/{aer.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "AER error on dgx-1" in en
    api = client.get(f"/api/v1/incidents/{xid.pk}/").json()
    assert api["title"] == xid.title
