"""The demo and its tooling, apart from the app: simulated hosts and their agent
configuration, the demo's seeding, the processes ``make demo`` / ``make prod``
start, fault injection, the load test and the fleet benchmarks, the screenshots.

This package is the only one that wires both sides together (it seeds the
console's database *and* configures simulated agents from ``hostagent.sim``),
so the console itself never imports the agent's host-side modules
(``pyproject.toml``: import-linter). Its management commands keep their names
(``manage.py rundemo``, ``loadtest``, …).
"""
