"""Migration 0010_h5_gpu_link_by_index carries every stored link: "GPU3" labels become
GPU indices, NIC names stay names, and back."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# The other branches merged beside this one (the hosts' hypervisor column, saved
# filters) stay applied: their columns are in the state the rows are written with.
BESIDE = [("core", "0008_merge_h1_h2")]
BEFORE = [("core", "0009_h5_job_member"), *BESIDE]
AFTER = [("core", "0010_h5_gpu_link_by_index"), *BESIDE]


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


@pytest.mark.django_db(transaction=True)
def test_links_move_from_labels_to_indices_and_back():
    old = _migrate(BEFORE)
    Cluster, Host = old.get_model("core", "Cluster"), old.get_model("core", "Host")
    host = Host.objects.create(cluster=Cluster.objects.create(name="c", slug="c"), name="h")
    GpuLink = old.get_model("core", "GpuLink")
    GpuLink.objects.create(host=host, a="GPU10", b="GPU3", kind="NV12", nvlinks=12)
    GpuLink.objects.create(host=host, a="GPU0", b="mlx5_0", kind="PXB")
    try:
        new = _migrate(AFTER)
        rows = {(r.a_gpu, r.a_nic, r.b_gpu, r.b_nic, r.kind)
                for r in new.get_model("core", "GpuLink").objects.all()}
        assert rows == {(10, "", 3, "", "NV12"), (0, "", None, "mlx5_0", "PXB")}

        back = _migrate(BEFORE)
        assert {(r.a, r.b) for r in back.get_model("core", "GpuLink").objects.all()} == {
            ("GPU10", "GPU3"), ("GPU0", "mlx5_0")}
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
