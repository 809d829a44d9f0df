"""companion.cache: one build per key, concurrent callers wait and load, atomic entries."""

import multiprocessing
import time

import torch
from companion import cache


def test_builds_once_per_key_and_loads_after(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return {"w": torch.arange(4.0), "note": "x"}

    first = cache.cached("t", "m", {"a": 1}, build, root=tmp_path)
    second = cache.cached("t", "m", {"a": 1}, build, root=tmp_path)
    other = cache.cached("t", "m", {"a": 2}, build, root=tmp_path)
    assert (first.hit, second.hit, other.hit) == (False, True, False)
    assert len(calls) == 2 and first.key == second.key != other.key
    assert torch.equal(second.value["w"], torch.arange(4.0)) and second.value["note"] == "x"
    assert second.build_seconds == first.build_seconds
    assert not list(tmp_path.rglob("*.tmp"))


def test_key_ignores_order_of_settings():
    assert cache.key({"a": 1, "b": [1, 2]}) == cache.key({"b": [1, 2], "a": 1})
    assert cache.key({"a": 1}) != cache.key({"a": 1.5})


def _slow_build():
    time.sleep(0.5)
    return {"pid": torch.tensor(multiprocessing.current_process().pid)}


def _worker(root, queue):
    out = cache.cached("t", "slow", {"k": 0}, _slow_build, root=root)
    queue.put((out.hit, int(out.value["pid"])))


def test_concurrent_callers_share_one_build(tmp_path):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    results = [queue.get(timeout=5) for _ in procs]
    assert sorted(hit for hit, _ in results) == [False, True]
    assert len({pid for _, pid in results}) == 1  # both see the value the one builder stored


def test_the_numerical_environment_is_part_of_the_key(tmp_path, monkeypatch):
    """A run under a stand-in for another CPU (other pinned variables) never loads the pinned run's entry."""
    build = lambda: {"x": torch.zeros(1)}  # noqa: E731
    pinned = cache.cached("t", "env", {"a": 1}, build, root=tmp_path)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    other = cache.cached("t", "env", {"a": 1}, build, root=tmp_path)
    assert not other.hit and other.key != pinned.key
