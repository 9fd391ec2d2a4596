"""Event kinds and pending codes are vocabularies with one definition each
(console.core.choices, the scheduler's codes from scheduler.PendingCode): every
writer and reader names a member, never a bare string."""

import re
from pathlib import Path

import scheduler
from console.core.choices import EventKind, PendingCode
from console.core.models import Event, Job

CONSOLE = Path(__file__).resolve().parents[2] / "console"
BARE = re.compile(r"""\b(kind|pending_code)\s*(=|==|!=)\s*["']([a-z_]+)["']""")
# Any other literal spelling a value with an underscore (distinctive enough to be the
# vocabulary's), unless it is a dict key or a subscript (other meanings: "over_limit").
LITERAL = re.compile(r"""(?<![\[\w])["']([a-z]+_[a-z_]+)["'](?!\s*[:\]])""")


def test_every_code_the_scheduler_writes_is_a_console_pending_code():
    assert {c.value for c in scheduler.PendingCode} <= set(PendingCode.values)


def test_the_columns_take_their_choices_from_the_vocabularies():
    assert Job._meta.get_field("pending_code").choices == PendingCode.choices
    assert Event._meta.get_field("kind").choices == EventKind.choices
    assert Event._meta.get_field("kind").default == EventKind.TRANSITION


def test_no_writer_or_reader_spells_a_kind_or_a_code_as_a_bare_string():
    vocab = set(EventKind.values) | set(PendingCode.values)
    found = []
    for path in CONSOLE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            hits = [m.group(3) for m in BARE.finditer(line)]
            hits += [m.group(1) for m in LITERAL.finditer(line) if path.name != "choices.py"]
            found += [f"{path.relative_to(CONSOLE.parent)}:{n}: {h}" for h in hits if h in vocab]
    assert found == []
