"""Allocation rows written before ``memory_by_numa`` was stored get the split the
snapshot used to infer for them (even over the row's NUMA nodes, the remainder on
the first), so that the snapshot reads every split from the row and infers none."""

from django.db import migrations


def _even(total, nodes):
    nodes = sorted(set(nodes or [0]))
    share, rest = divmod(total, len(nodes))
    return [[node, share + (1 if i < rest else 0)] for i, node in enumerate(nodes)]


def fill(apps, schema_editor):
    Allocation = apps.get_model("core", "Allocation")
    rows = Allocation.objects.filter(gpu__isnull=True, memory_gib__gt=0)
    for row in rows.iterator():
        if not row.memory_by_numa:
            row.memory_by_numa = _even(row.memory_gib, row.numa_nodes)
            row.save(update_fields=["memory_by_numa"])


def unfill(apps, schema_editor):
    """Back: the rows keep their split (the older code reads it as well)."""


class Migration(migrations.Migration):
    dependencies = [("core", "0006_merge_i12")]

    operations = [migrations.RunPython(fill, unfill)]
