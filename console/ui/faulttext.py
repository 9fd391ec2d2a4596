"""Fault text in the reader's language.

The Xid table and the names and actions the agent gives PCIe AER and KVM
lines are the protocol's vocabulary (``hostagent.protocol.faults``); both
arrive in English. The console translates them at
render time, by Xid code for catalogue entries and by their English text for
the rest, through gettext. Their translations live in their own catalogue,
``locale/faults/zh_Hans/LC_MESSAGES/django.po`` (a second entry of
``LOCALE_PATHS``), whose msgids this module writes from the table itself:

    python -m console.ui.faulttext      # (``make messages`` runs it)

so that a row added to the table shows up there, untranslated until someone
translates it (``tests/ui/test_fault_text.py`` fails until then).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.utils.translation import gettext

from hostagent.protocol.faults import EVENT_TEXTS, CatalogEntry, load_catalog

LOCALE = Path(__file__).resolve().parents[2] / "locale" / "faults"

@cache
def xid_catalog() -> dict[int, CatalogEntry]:
    """The agent's Xid table (an empty one where the data file is missing)."""
    try:
        return load_catalog()
    except OSError:
        return {}


@dataclass(frozen=True)
class FaultText:
    """What an incident's fault is and what to do, in the active language."""

    name: str
    meaning: str
    likely_cause: str
    action: str


def fault_text(xid: int | None, meaning: str = "", action: str = "") -> FaultText:
    """By Xid code from the catalogue when it has the code; else the texts the
    incident recorded (the agent's, or the console's own), translated when the
    catalogue of fault texts knows them."""
    entry = xid_catalog().get(xid) if xid is not None else None
    if entry is not None:
        return FaultText(name=gettext(entry.name), meaning=gettext(entry.meaning),
                         likely_cause=gettext(entry.likely_cause),
                         action=gettext(entry.recommended_action))
    return FaultText(name="", meaning=gettext(meaning) if meaning else "", likely_cause="",
                     action=gettext(action) if action else "")


def texts() -> list[str]:
    """Every English text of the table and of the agent's other fault kinds."""
    seen: dict[str, None] = {}
    for entry in xid_catalog().values():
        for text in (entry.name, entry.meaning, entry.likely_cause, entry.recommended_action):
            seen.setdefault(text, None)
    for text in EVENT_TEXTS:
        seen.setdefault(text, None)
    return [text for text in seen if text]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_catalogue(language: str = "zh_Hans") -> Path:
    """Write the template of fault texts and merge it into ``language``'s .po
    (new texts untranslated, gone ones dropped)."""
    pot = Path(tempfile.mkdtemp()) / "django.pot"
    header = ('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n'
              '"Content-Transfer-Encoding: 8bit\\n"\n"Plural-Forms: nplurals=1; plural=0;\\n"\n')
    body = "".join(f"\n#. hostagent/protocol/faults.py\nmsgid {_quote(t)}"
                   f'\nmsgstr ""\n' for t in texts())
    pot.write_text(f"# Fault texts from the host agent (console/ui/faulttext.py).\n{header}{body}")
    po = LOCALE / language / "LC_MESSAGES" / "django.po"
    po.parent.mkdir(parents=True, exist_ok=True)
    if po.exists():
        subprocess.run(["msgmerge", "--quiet", "--update", "--backup=none", "--no-fuzzy-matching",
                        str(po), str(pot)], check=True)
        subprocess.run(["msgattrib", "--no-obsolete", "-o", str(po), str(po)], check=True)
    else:
        po.write_text(pot.read_text().replace('"Plural-Forms',
                                              f'"Language: {language}\\n"\n"Plural-Forms'))
    return po


if __name__ == "__main__":  # pragma: no cover - a maintainer's command
    print(write_catalogue(*sys.argv[1:]))
