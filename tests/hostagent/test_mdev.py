"""mdev seam on a built sysfs tree shaped like an NVIDIA vGPU host's."""

import pytest

from hostagent import mdev

PCI = "0000:07:00.0"
UUID = "c2177883-f1bb-47f0-914d-32a22e3a8804"


def vgpu_tree(root, types):
    base = root / "sys/bus/pci/devices" / PCI / "mdev_supported_types"
    for name, ways, available in types:
        t = base / name
        t.mkdir(parents=True)
        (t / "description").write_text(f"num_heads=4, frl_config=60, framebuffer={40 // ways}G, "
                                       f"max_resolution=5120x2880, max_instance={ways}\n")
        (t / "available_instances").write_text(f"{available}\n")
        (t / "create").write_text("")
    return root


def test_the_profile_that_splits_most_while_giving_enough_is_chosen(tmp_path):
    root = vgpu_tree(tmp_path, [("nvidia-471", 10, 10), ("nvidia-472", 4, 4),
                                ("nvidia-473", 2, 2), ("nvidia-474", 1, 1)])
    assert mdev.pick_type(root, PCI, 100) == "nvidia-471"   # 1/10 is enough
    assert mdev.pick_type(root, PCI, 250) == "nvidia-472"   # needs ≥ 1/4
    assert mdev.pick_type(root, PCI, 400) == "nvidia-473"   # needs ≥ 1/2 (1/4 is too small)
    assert mdev.pick_type(root, PCI, 999) == "nvidia-474"


def test_an_exhausted_profile_is_skipped_and_none_left_is_a_clear_error(tmp_path):
    root = vgpu_tree(tmp_path, [("nvidia-472", 4, 0), ("nvidia-473", 2, 1)])
    assert mdev.pick_type(root, PCI, 250) == "nvidia-473"
    empty = vgpu_tree(tmp_path / "empty", [("nvidia-472", 4, 0)])
    with pytest.raises(mdev.MdevError, match="no available vGPU type"):
        mdev.pick_type(empty, PCI, 250)


def test_create_writes_the_uuid_and_remove_is_idempotent(tmp_path):
    root = vgpu_tree(tmp_path, [("nvidia-472", 4, 4)])
    assert mdev.create(root, PCI, UUID, milli=250) == "nvidia-472"
    create_file = root / "sys/bus/pci/devices" / PCI / "mdev_supported_types/nvidia-472/create"
    assert create_file.read_text() == UUID
    # The kernel would now show the device; build it and remove it twice.
    device = root / "sys/bus/mdev/devices" / UUID
    device.mkdir(parents=True)
    (device / "remove").write_text("")
    assert mdev.remove(root, UUID) is True
    assert (device / "remove").read_text() == "1"
    (device / "remove").unlink()
    assert mdev.remove(root, UUID) is False


def test_a_host_without_vgpu_support_says_so(tmp_path):
    with pytest.raises(mdev.MdevError, match="mdev_supported_types"):
        mdev.create(tmp_path, PCI, UUID, milli=250)


def test_the_agent_creates_the_mdev_before_the_vm_and_removes_it_after(tmp_path):
    """Provision and teardown through the agent runtime on libvirt's test driver,
    with a vGPU sysfs tree standing in for the host's."""
    from hostagent import runtime

    root = vgpu_tree(tmp_path, [("nvidia-472", 4, 4)])
    runtime.reset()
    runtime.configure(runtime.AgentConfig(hosts=[runtime.HostConfig(
        name="ada-1", libvirt_uri=runtime.blank_node_uri(), mdev_root=str(root))]))
    spec = {"job_id": "9", "name": "coupler-job-9", "vcpus": 1, "memory_mib": 1024,
            "cpus": [2], "numa_nodes": [0], "gpus": [], "hugepages": False,
            "gpu_shares": [{"pci": PCI, "milli": 250, "mdev_uuid": UUID}]}
    try:
        result = runtime.provision("ada-1", spec)
        assert result["ok"], result
        create_file = root / "sys/bus/pci/devices" / PCI / "mdev_supported_types/nvidia-472/create"
        assert create_file.read_text() == UUID
        assert f"uuid='{UUID}'" in runtime.domain_xml("ada-1", "coupler-job-9").replace('"', "'")
        # What the kernel shows once the device exists; teardown must remove it.
        device = root / "sys/bus/mdev/devices" / UUID
        device.mkdir(parents=True)
        (device / "remove").write_text("")
        assert runtime.teardown("ada-1", "coupler-job-9", "9")["ok"]
        assert (device / "remove").read_text() == "1"
    finally:
        runtime.reset()


def test_no_vgpu_support_fails_the_provision_and_leaves_nothing(tmp_path):
    from hostagent import runtime

    runtime.reset()
    runtime.configure(runtime.AgentConfig(hosts=[runtime.HostConfig(
        name="ada-1", libvirt_uri=runtime.blank_node_uri(), mdev_root=str(tmp_path))]))
    spec = {"job_id": "9", "name": "coupler-job-9", "vcpus": 1, "memory_mib": 1024,
            "cpus": [2], "numa_nodes": [0], "gpus": [], "hugepages": False,
            "gpu_shares": [{"pci": PCI, "milli": 250, "mdev_uuid": UUID}]}
    try:
        result = runtime.provision("ada-1", spec)
        assert not result["ok"] and "mdev_supported_types" in result["error"]
        assert runtime.list_domains("ada-1") == []
    finally:
        runtime.reset()
