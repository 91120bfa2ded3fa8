"""The agent's readers: procfs (node CPU and memory) and cgroup v2 (offline containers), on fixture trees and on this
machine's real files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from broker.errors import InputError
from broker.model import Sink
from plugins.node_agent.cgroup import Discovery, cgroup2_mount, own_cgroup, read_usage
from plugins.node_agent.procfs import CpuTimes, cpu_milli_between, read_cpu_times, read_meminfo
from plugins.node_agent.sampler import Sampler

POD_UID = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"


def write_proc(root: Path, user: int, idle: int, available_kb: int = 6_291_456) -> Path:
    """A two-CPU procfs with the given cumulative jiffies (user, idle) and 8 GiB of memory."""
    root.mkdir(exist_ok=True)
    (root / "stat").write_text(
        f"cpu  {user} 0 0 {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0 0 0\n"
        "intr 1 2 3\nbtime 1700000000\n")
    (root / "meminfo").write_text(
        f"MemTotal:        8388608 kB\nMemFree:         1000000 kB\nMemAvailable:    {available_kb} kB\n")
    return root


def write_cgroup(path: Path, usage_usec: int, memory_bytes: int | None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "cpu.stat").write_text(f"usage_usec {usage_usec}\nuser_usec 0\nsystem_usec 0\n")
    if memory_bytes is not None:
        (path / "memory.current").write_text(f"{memory_bytes}\n")
    return path


# --- procfs ---------------------------------------------------------------------------------------------------------

def test_cpu_between_two_reads_is_the_busy_share_of_all_cpus(tmp_path: Path) -> None:
    before = read_cpu_times(write_proc(tmp_path / "proc", user=100, idle=100))
    after = read_cpu_times(write_proc(tmp_path / "proc", user=250, idle=150))
    assert before.cpus == 2
    assert cpu_milli_between(before, after) == 1_500  # 150 of 200 jiffies busy, of 2000m


def test_counters_going_backwards_read_as_idle() -> None:
    assert cpu_milli_between(CpuTimes(used=500, total=900, cpus=2), CpuTimes(used=400, total=1000, cpus=2)) == 0


def test_memory_used_is_total_minus_available(tmp_path: Path) -> None:
    memory = read_meminfo(write_proc(tmp_path / "proc", 0, 0, available_kb=6_291_456))
    assert (memory.total_mib, memory.used_mib) == (8_192, 2_048)


def test_a_missing_memavailable_is_an_error_naming_the_file(tmp_path: Path) -> None:
    root = write_proc(tmp_path / "proc", 0, 0)
    (root / "meminfo").write_text("MemTotal: 100 kB\n")
    with pytest.raises(InputError, match="MemAvailable") as error:
        read_meminfo(root)
    assert error.value.field == str(root / "meminfo")


def test_this_machines_proc_reads_plausibly() -> None:
    before = read_cpu_times()
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:  # keep one CPU busy so the delta is not all idle
        pass
    after = read_cpu_times()
    memory = read_meminfo()
    assert before.cpus == (os.cpu_count() or 0)
    assert 0 < cpu_milli_between(before, after) <= after.cpus * 1000
    assert 0 < memory.used_mib < memory.total_mib


# --- cgroup v2 -------------------------------------------------------------------------------------------------------

def test_usage_reads_cpu_time_and_memory(tmp_path: Path) -> None:
    usage = read_usage(write_cgroup(tmp_path / "c", 123_456, 7 * 1024 * 1024))
    assert usage is not None and (usage.usage_usec, usage.memory_bytes) == (123_456, 7 * 1024 * 1024)


def test_a_cgroup_without_the_memory_controller_reads_zero_memory(tmp_path: Path) -> None:
    usage = read_usage(write_cgroup(tmp_path / "c", 5, None))
    assert usage is not None and usage.memory_bytes == 0


def test_a_vanished_cgroup_reads_as_none(tmp_path: Path) -> None:
    assert read_usage(tmp_path / "gone") is None


def fake_tree(root: Path) -> Path:
    yarn = root / "hadoop-yarn"
    write_cgroup(yarn / "container_e17_1410901177871_0001_01_000001", 1, 1)
    write_cgroup(yarn / "container_1410901177871_0001_01_000002", 1, 1)
    write_cgroup(yarn / "not-a-container", 1, 1)
    pods = root / "kubepods.slice" / "kubepods-besteffort.slice"
    write_cgroup(pods / f"kubepods-besteffort-pod{POD_UID.replace('-', '_')}.slice", 1, 1)
    write_cgroup(pods / f"kubepods-besteffort-pod{POD_UID.replace('-', '_')}.slice" / "cri-containerd-ab.scope", 1, 1)
    write_cgroup(root / "kubepods" / "besteffort" / "pod11111111-2222-3333-4444-555555555555", 1, 1)
    return root


def test_discovery_finds_yarn_containers_and_batch_pods_in_both_driver_layouts(tmp_path: Path) -> None:
    found = {(c.sink, c.container, c.is_am) for c in Discovery.under(fake_tree(tmp_path)).scan()}
    assert found == {
        (Sink.YARN, "container_e17_1410901177871_0001_01_000001", True),
        (Sink.YARN, "container_1410901177871_0001_01_000002", False),
        (Sink.KUBERNETES, POD_UID, False),
        (Sink.KUBERNETES, "11111111-2222-3333-4444-555555555555", False),
    }


def test_a_pod_is_an_am_only_when_the_mapping_says_so(tmp_path: Path) -> None:
    found = Discovery.under(fake_tree(tmp_path), am_pods={POD_UID}).scan()
    assert {c.container for c in found if c.sink is Sink.KUBERNETES and c.is_am} == {POD_UID}


def test_a_container_keeps_its_first_start_time_and_is_forgotten_when_gone(tmp_path: Path) -> None:
    root = fake_tree(tmp_path)
    discovery = Discovery.under(root)
    first = {c.container: c.started_s for c in discovery.scan()}
    path = root / "hadoop-yarn" / "container_1410901177871_0001_01_000002"
    os.chmod(path, 0o700)  # changes the ctime
    assert {c.container: c.started_s for c in discovery.scan()} == first
    for child in path.iterdir():
        child.unlink()
    path.rmdir()
    assert "container_1410901177871_0001_01_000002" not in {c.container for c in discovery.scan()}


def test_missing_roots_find_nothing(tmp_path: Path) -> None:
    assert Discovery.under(tmp_path).scan() == []


@pytest.fixture(scope="module")
def cgroup2() -> Path:
    mount = cgroup2_mount()
    if mount is None:
        pytest.skip("this machine has no cgroup v2 mount")
    return mount


def test_this_machines_cgroup2_root_and_own_cgroup_read(cgroup2: Path) -> None:
    root = read_usage(cgroup2)
    own_path = own_cgroup()
    assert own_path is not None
    own = read_usage(cgroup2 / own_path.lstrip("/"))
    assert root is not None and own is not None
    assert root.usage_usec > 0
    assert own.usage_usec <= root.usage_usec
    if (cgroup2 / "memory.current").exists():
        assert root.memory_bytes > 0


# --- the sample -----------------------------------------------------------------------------------------------------

def test_online_usage_is_node_usage_minus_offline_containers(tmp_path: Path) -> None:
    proc = write_proc(tmp_path / "proc", user=0, idle=0)
    root = tmp_path / "cg"
    worker = write_cgroup(root / "hadoop-yarn" / "container_1_0001_01_000002", 0, 1024 * 1024 * 1024)
    ticks = iter([0.0, 1.0])
    sampler = Sampler("node-1", proc, Discovery.under(root), clock=lambda: 1_700_000_000.0,
                      monotonic=lambda: next(ticks))
    sampler.prime()
    write_proc(proc, user=150, idle=50)  # 1500m of 2000m busy
    write_cgroup(worker, 600_000, 1024 * 1024 * 1024)  # 600 ms of CPU in 1 s: 600m
    sample = sampler.sample()
    assert (sample.capacity_cpu_milli, sample.capacity_memory_mib) == (2_000, 8_192)
    assert (sample.online_cpu_milli, sample.online_memory_mib) == (900, 1_024)
    assert [(c.container, c.cpu_milli, c.memory_mib, c.is_am) for c in sample.offline] == [
        ("container_1_0001_01_000002", 600, 1_024, False)]
    assert sample.seq == 0


def test_a_container_first_seen_counts_as_online_cpu_and_online_never_goes_negative(tmp_path: Path) -> None:
    proc = write_proc(tmp_path / "proc", user=0, idle=0)
    root = tmp_path / "cg"
    sampler = Sampler("node-1", proc, Discovery.under(root))
    sampler.prime()
    write_proc(proc, user=10, idle=190, available_kb=8_388_608 - 100 * 1024)  # 100 MiB used by the node
    write_cgroup(root / "hadoop-yarn" / "container_1_0001_01_000002", 10**9, 500 * 1024 * 1024)
    sample = sampler.sample()
    assert sample.offline[0].cpu_milli == 0
    assert (sample.online_cpu_milli, sample.online_memory_mib) == (100, 0)
