"""简体中文 and English: the zh-Hans catalogue is complete (every string the
templates and code mark for translation has a translation, and the compiled
catalogue matches the .po), the console answers in the language the browser
asks for, and a user's language and time zone are kept."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

PO = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
FIELD = re.compile(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[0\])?) ((?:"(?:[^"\\]|\\.)*"\n?)+)',
                   re.M)


def _entries(text: str) -> list[tuple[str, str, bool]]:
    """(msgid, msgstr, fuzzy) of each entry of a .po file (blocks between blank lines)."""
    def join(block):
        return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', block))

    out = []
    for block in text.split("\n\n"):
        fields = {m.group(1): join(m.group(2)) for m in FIELD.finditer(block)}
        fuzzy = bool(re.search(r"^#,.*\bfuzzy\b", block, re.M))
        msgid = fields.get("msgid", "")
        if msgid and not block.lstrip().startswith("#~"):
            out.append((msgid, fields.get("msgstr", fields.get("msgstr[0]", "")), fuzzy))
    return out


def test_the_catalogue_is_complete(tmp_path):
    """Extract the strings afresh (makemessages over links to the sources, into
    a copy of the catalogue) and require a translation for each: a string
    marked for translation without a zh-Hans one fails here."""
    if not shutil.which("xgettext") or not shutil.which("msgmerge"):
        pytest.fail("gettext is not installed (apt-get install gettext; `make venv` does it)")
    root = Path(settings.BASE_DIR)
    for name in ("console", "templates"):
        (tmp_path / name).symlink_to(root / name)
    # The check catalogue's titles and remediations (the agent's package, pure data).
    (tmp_path / "hostagent" / "protocol").mkdir(parents=True)
    (tmp_path / "hostagent" / "protocol" / "checks.py").symlink_to(
        root / "hostagent" / "protocol" / "checks.py")
    shutil.copytree(PO.parents[2], tmp_path / "locale")
    env = {**os.environ, "PYTHONPATH": str(root), "DJANGO_SETTINGS_MODULE": "console.settings"}
    subprocess.run([sys.executable, "-m", "django", "makemessages", "-l", "zh_Hans",
                    "--symlinks", "--no-location", "-v", "0"],
                   cwd=tmp_path, env=env, check=True, timeout=120)
    fresh = _entries((tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po").read_text())
    assert len(fresh) > 300
    missing = [msgid for msgid, msgstr, fuzzy in fresh if not msgstr or fuzzy]
    assert not missing, f"{len(missing)} strings without a zh-Hans translation: {missing[:20]}"


def test_the_compiled_catalogue_matches_the_po():
    entries = _entries(PO.read_text())
    with translation.override("zh-hans"):
        stale = [msgid for msgid, msgstr, _fuzzy in entries
                 if "%" not in msgid and "\\" not in msgid
                 and translation.gettext(msgid) != msgstr]
    assert not stale, f"django.mo is older than django.po (run compilemessages): {stale[:10]}"


@pytest.mark.django_db
def test_the_console_speaks_the_browsers_language(client, member_a, quotas_a):
    client.force_login(member_a)
    zh = client.get("/jobs/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.5").content.decode()
    assert '<html lang="zh-hans">' in zh and "作业" in zh and "仪表盘" in zh
    en = client.get("/jobs/", HTTP_ACCEPT_LANGUAGE="en-US").content.decode()
    assert '<html lang="en">' in en and "Dashboard" in en and "仪表盘" not in en


@pytest.mark.django_db
def test_the_switcher_keeps_the_choice_for_the_user(client, member_a):
    from console.core.models import UserPreference

    client.force_login(member_a)
    response = client.post("/language/", {"language": "zh-hans", "next": "/jobs/"})
    assert response.status_code == 302 and response["Location"] == "/jobs/"
    assert UserPreference.objects.get(user=member_a).language == "zh-hans"
    # Another browser (no cookie, English Accept-Language): the saved choice wins.
    client.cookies.clear()
    client.force_login(member_a)
    assert "仪表盘" in client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


@pytest.mark.django_db
def test_the_switcher_refuses_an_offsite_next(client):
    response = client.post("/language/", {"language": "en", "next": "https://evil.example/"})
    assert response["Location"] == "/"


@pytest.mark.django_db
def test_times_are_in_the_users_zone_with_the_absolute_time_on_hover(client, member_a, quotas_a,
                                                                     submit):
    job = submit(quotas_a, member_a)
    client.force_login(member_a)
    client.cookies["coupler_tz"] = "Asia/Shanghai"
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    local = job.submitted_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    assert f'title="{local:%Y-%m-%d %H:%M:%S} CST"' in html
    assert re.search(r"<time [^>]*>(now|\d+\xa0seconds? ago|a minute ago)</time>", html)
    client.post("/preferences/", {"language": "", "time_zone": "Europe/Berlin"})
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "CET" in html or "CEST" in html


@pytest.mark.django_db
def test_drf_errors_speak_chinese(client_for, member_a):
    response = client_for(member_a).post("/api/v1/jobs/", {}, format="json",
                                         HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert response.status_code == 400
    assert "该字段是必填项。" in response.content.decode()


@pytest.mark.django_db
def test_a_saved_preference_shows_on_the_next_page_though_pages_read_it_from_the_cache(
        client, member_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from console.core.models import UserPreference

    client.force_login(member_a)
    client.get("/jobs/")  # caches "follow the browser"
    with CaptureQueriesContext(connection) as read:
        client.get("/jobs/")
    assert not [q for q in read.captured_queries if "userpreference" in q["sql"].lower()]
    UserPreference.objects.update_or_create(user=member_a, defaults={"language": "zh-hans"})
    assert "作业" in client.get("/jobs/").content.decode()
    UserPreference.objects.filter(user=member_a).delete()
    assert "作业" not in client.get("/jobs/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
