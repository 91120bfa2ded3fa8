"""The guard kills as few offline containers as it can: workers before AMs, newest first, both overflows covered."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from broker.capacity.guard import Kill, Running, choose_victims


def worker(key: int, started_s: float, count: int = 1, cpu_milli: int = 1000, memory_mib: int = 2048) -> Running:
    return Running(key=key, count=count, cpu_milli=cpu_milli, memory_mib=memory_mib, started_s=started_s, is_am=False)


def am(key: int, started_s: float, cpu_milli: int = 1000, memory_mib: int = 2048) -> Running:
    return Running(key=key, count=1, cpu_milli=cpu_milli, memory_mib=memory_mib, started_s=started_s, is_am=True)


def test_no_overflow_kills_nothing() -> None:
    assert choose_victims(0, -100, [worker(1, 0)]) == []


def test_the_newest_worker_is_killed_first() -> None:
    assert choose_victims(500, 0, [worker(1, 10), worker(2, 30), worker(3, 20)]) == [Kill(2, 1)]


def test_workers_go_before_an_am_even_when_the_am_is_newer() -> None:
    assert choose_victims(500, 0, [am(1, 100), worker(2, 0)]) == [Kill(2, 1)]


def test_an_am_is_killed_only_when_no_worker_is_left() -> None:
    kills = choose_victims(2500, 0, [am(1, 100), worker(2, 0, count=2)])
    assert kills == [Kill(2, 2), Kill(1, 1)]


def test_only_as_many_containers_as_cover_the_overflow_are_killed() -> None:
    assert choose_victims(2500, 0, [worker(1, 0, count=10)]) == [Kill(1, 3)]


def test_kills_cover_both_cpu_and_memory_overflow() -> None:
    kills = choose_victims(1000, 5000, [worker(1, 0, count=10, cpu_milli=1000, memory_mib=1024)])
    assert kills == [Kill(1, 5)]


def test_memory_overflow_alone_is_covered_by_big_memory_containers_first_among_equals() -> None:
    running = [worker(1, 0, memory_mib=1024), worker(2, 0, memory_mib=8192)]
    assert choose_victims(0, 4000, running) == [Kill(2, 1)]


def test_cpu_freed_is_what_containers_really_use() -> None:
    assert choose_victims(1000, 0, [worker(1, 0, count=4)], cpu_usage=0.5) == [Kill(1, 2)]


def test_an_overflow_that_cannot_be_covered_kills_everything() -> None:
    running = [worker(1, 0, count=2), am(2, 0)]
    assert choose_victims(10_000, 0, running) == [Kill(1, 2), Kill(2, 1)]


# Real containers ask for some CPU and some memory, so killing any of them frees some of each.
placements = st.lists(
    st.builds(Running, key=st.integers(0, 10**6), count=st.integers(1, 5), cpu_milli=st.integers(1, 4000),
              memory_mib=st.integers(1, 8192), started_s=st.floats(0, 1e5), is_am=st.booleans()),
    max_size=8, unique_by=lambda r: r.key,
)


@given(st.integers(-1000, 20_000), st.integers(-1000, 40_000), placements)
def test_kills_cover_the_overflow_or_take_everything_and_spare_ams_while_workers_remain(
        cpu: int, memory: int, running: list[Running]) -> None:
    kills = choose_victims(cpu, memory, running)
    by_key = {r.key: r for r in running}
    assert all(0 < k.count <= by_key[k.key].count for k in kills)
    freed_cpu = sum(k.count * by_key[k.key].cpu_milli for k in kills)
    freed_mem = sum(k.count * by_key[k.key].memory_mib for k in kills)
    killed = {k.key: k.count for k in kills}
    everything = all(killed.get(r.key) == r.count for r in running)
    assert (freed_cpu >= cpu and freed_mem >= memory) or everything
    killed_am = any(by_key[key].is_am for key in killed)
    spared_worker = any(not r.is_am and killed.get(r.key) != r.count for r in running)
    assert not (killed_am and spared_worker)


@given(st.integers(1, 20_000), st.integers(1, 40_000), placements)
def test_one_container_fewer_would_leave_the_overflow_uncovered(cpu: int, memory: int,
                                                                running: list[Running]) -> None:
    kills = choose_victims(cpu, memory, running)
    by_key = {r.key: r for r in running}
    if kills:
        last = by_key[kills[-1].key]
        freed_cpu = sum(k.count * by_key[k.key].cpu_milli for k in kills) - last.cpu_milli
        freed_mem = sum(k.count * by_key[k.key].memory_mib for k in kills) - last.memory_mib
        assert freed_cpu < cpu or freed_mem < memory
