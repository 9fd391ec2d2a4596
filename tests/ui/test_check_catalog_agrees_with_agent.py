"""The console lists the checks the agent runs: the console may not import the
agent's check code, so its catalogue is its own — this keeps the two in step."""

from console.ui.checks import CATALOG
from hostagent.checks import REGISTRY


def test_the_console_catalogue_has_every_agent_check_in_order_with_its_risk():
    assert [item.id for item in CATALOG] == [check.id for check in REGISTRY]
    assert {item.id: str(item.risk) for item in CATALOG} == {c.id: c.risk for c in REGISTRY}
