"""docs/protocol.md is written from the types; the heartbeat bench runs."""

from pathlib import Path

from hostagent.protocol import Message, Part, bench, doc, messages, spec

DOC = Path(__file__).parents[2] / "docs" / "protocol.md"


def test_the_protocol_doc_is_current():
    assert DOC.read_text() == doc.render(), (
        "docs/protocol.md is stale: python -m hostagent.protocol doc --write docs/protocol.md")


def test_the_doc_lists_every_declared_type_and_field():
    declared = {obj for module in (messages, spec) for obj in vars(module).values()
                if isinstance(obj, type) and issubclass(obj, Part) and obj not in (Part, Message)
                and obj.__module__ == module.__name__}
    documented = {cls for _title, _text, types in doc.SECTIONS for cls in types}
    assert documented == declared
    text = doc.render()
    for cls in declared:
        for field in cls.__struct_fields__:
            assert f"| `{field}` |" in text.split(f"### {cls.__name__}\n")[1].split("###")[0]


def test_the_bench_times_the_heartbeat_and_skips_what_is_not_installed():
    out = bench.report(n=20)
    assert "msgspec" in out and out.count(" B ") == 2
    try:
        import pydantic  # noqa: F401
    except ImportError:
        assert "pydantic: not installed, skipped" in out
    else:
        assert "pydantic v2" in out
