import os
from pathlib import Path

import pytest

from hostagent import cgroups
from hostagent.protocol import CgroupSettings, IoLimit, ProvisionSpec

UNIFIED_CANDIDATES = [Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")]


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "coupler.slice"
    r.mkdir()
    (r / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (r / "cgroup.subtree_control").write_text("")
    return r


def test_apply_spec_writes_every_file_in_the_kernel_format(root, spec_dict):
    spec = ProvisionSpec.from_dict(spec_dict)
    path = cgroups.apply_spec(root, spec, require_cgroupfs=False)
    assert path == root / "job-42"
    assert cgroups.read_values(path) == {
        "cpuset.cpus": "48-51",
        "cpuset.mems": "3",
        "cpu.weight": "200",
        "memory.high": str(8 * 2**30),
        "memory.max": str(9 * 2**30),
        "io.max": "8:16 rbps=2097152 wbps=max riops=max wiops=120",
    }


def test_unset_memory_limits_are_max_and_apply_is_idempotent(root):
    settings = CgroupSettings()
    for _ in range(2):
        path = cgroups.create_job_cgroup(root, "job-1", cpus=[0, 2, 4], mems=[0, 1],
                                         settings=settings)
    values = cgroups.read_values(path)
    assert values["memory.max"] == "max" and values["memory.high"] == "max"
    assert values["cpuset.cpus"] == "0,2,4" and values["cpuset.mems"] == "0-1"


def test_enable_controllers_only_enables_what_is_offered(root):
    (root / "cgroup.controllers").write_text("cpu memory\n")
    assert cgroups.enable_controllers(root) == ["cpu", "memory"]
    assert (root / "cgroup.subtree_control").read_text() == "+cpu +memory"
    with pytest.raises(cgroups.CgroupError, match=r"controller.*cpuset, io not available"):
        cgroups.enable_controllers(root, required=cgroups.CONTROLLERS)


def test_a_tmpfs_or_plain_directory_is_refused_as_a_cgroup_root(tmp_path, spec_dict):
    """A hybrid host's /sys/fs/cgroup is tmpfs: files written there limit nothing."""
    with pytest.raises(cgroups.CgroupError, match="not on cgroupfs"):
        cgroups.apply_spec(tmp_path / "coupler.slice", ProvisionSpec.from_dict(spec_dict))
    assert not (tmp_path / "coupler.slice").exists()
    for candidate in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"),
                      Path("/sys/fs/cgroup/cpuset")):
        if candidate.exists():
            kinds = {"cgroup2", "cgroup"}
            try:
                assert cgroups.check_cgroupfs(candidate) in kinds
            except cgroups.CgroupError as exc:
                assert "tmpfs" in str(exc)  # the hybrid root


def test_a_write_to_a_disabled_controller_names_it(root):
    (root / "cgroup.controllers").write_text("cpu memory\n")
    job = root / "job-1"
    job.mkdir()
    (job / "cgroup.controllers").write_text("cpu memory\n")
    with pytest.raises(cgroups.CgroupError, match="cpuset controller is not enabled"):
        cgroups.create_job_cgroup(root, "job-1", cpus=[0], mems=[0], settings=CgroupSettings())


def test_layout_tells_hybrid_v1_and_v2_apart():
    hybrid = ("tmpfs /sys/fs/cgroup tmpfs rw 0 0\n"
              "cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0\n"
              "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n")
    got = cgroups.layout(hybrid)
    assert got["mode"] == "hybrid" and got["v2_mount"] == "/sys/fs/cgroup/unified"
    assert got["v1"] == {"cpuset": "/sys/fs/cgroup/cpuset"}
    assert cgroups.layout("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n")["mode"] == "v2"
    assert cgroups.layout(hybrid.replace(" cgroup2 rw", " xfs rw"))["mode"] == "v1"


def test_memory_events_are_read_back(root):
    path = cgroups.create_job_cgroup(root, "job-1", cpus=[0], mems=[0], settings=CgroupSettings())
    (path / "memory.events").write_text("low 0\nhigh 12\nmax 3\noom 1\noom_kill 1\n")
    assert cgroups.read_memory_events(path) == {"low": 0, "high": 12, "max": 3, "oom": 1,
                                                "oom_kill": 1}


def test_remove_is_safe_to_repeat(root):
    cgroups.create_job_cgroup(root, "job-1", cpus=[0], mems=[0], settings=CgroupSettings())
    assert cgroups.remove_job_cgroup(root, "job-1") is True
    assert cgroups.remove_job_cgroup(root, "job-1") is False
    assert not (root / "job-1").exists()


def test_a_refused_write_names_the_file_and_the_value(root):
    path = root / "job-1"
    (path / "cpu.weight").mkdir(parents=True)  # writing to a directory fails
    with pytest.raises(cgroups.CgroupError, match=r"'100' to .*job-1/cpu.weight"):
        cgroups.create_job_cgroup(root, "job-1", cpus=[0], mems=[0], settings=CgroupSettings())


def test_job_names_cannot_escape_the_root(root):
    with pytest.raises(ValueError, match="name"):
        cgroups.job_cgroup_path(root, "../../etc")


def test_io_max_format():
    assert cgroups.format_io_max(IoLimit(device="259:0", wbps=1000)) == (
        "259:0 rbps=max wbps=1000 riops=max wiops=max")


def _writable_cgroup2():
    for base in UNIFIED_CANDIDATES:
        if (base / "cgroup.procs").exists() and os.access(base, os.W_OK):
            return base
    return None


def test_real_cgroup_create_write_and_remove():
    base = _writable_cgroup2()
    if base is None:
        pytest.skip("no writable cgroup v2 hierarchy on this machine")
    root = base / f"coupler-test-{os.getpid()}"
    try:
        enabled = cgroups.enable_controllers(root)
    except (cgroups.CgroupError, OSError) as exc:
        pytest.skip(f"cannot create a cgroup under {base}: {exc}")
    try:
        missing = {"cpuset", "memory", "cpu"} - set(enabled)
        if missing:
            # Still prove create and remove work on the real filesystem.
            path = root / "job-1"
            path.mkdir()
            assert cgroups.remove_job_cgroup(root, "job-1") is True
            assert not path.exists()
            pytest.skip(f"controllers {sorted(missing)} not offered by cgroup v2 at {base} "
                        "(bound to cgroup v1 here); only create/remove was exercised")
        cpus = sorted(os.sched_getaffinity(0))[:1]
        path = cgroups.create_job_cgroup(
            root, "job-1", cpus=cpus, mems=[0],
            settings=CgroupSettings(cpu_weight=50, memory_high=2**30, memory_max=2 * 2**30))
        values = cgroups.read_values(path)
        assert values["cpu.weight"] == "50"
        assert values["memory.max"] == str(2 * 2**30)
        assert "oom_kill" in cgroups.read_memory_events(path)
        assert cgroups.remove_job_cgroup(root, "job-1") is True
    finally:
        for p in (root / "job-1", root):
            if p.exists():
                os.rmdir(p)
