"""What both sides of the wire name the same way: CPU lists (``cpulist``) and the
names of domains, cgroups and queues (``naming``). Pure, standard library only:
the console, the scheduler and the host agent may all import it, and it imports
none of them (import-linter contract in pyproject.toml)."""
