"""companion.bench: record tolerances sized from stand-in deviations."""

import json

from companion import bench


def test_propose_tolerances_rounds_up_three_times_the_deviation_and_skips_timings():
    lines = [
        json.dumps({"slug": "s", "notebook": "n", "deviations": dev})
        for dev in (
            {"acc.sgd.mean": 0.004, "seconds_per_epoch.sfw": 0.5, "pretrain_seconds": 3.0, "n": 0.0},
            {"acc.l1.mean": 0.01, "seconds_per_epoch.sgd": 0.1, "throughput_ratio": 0.2, "n": 0.0},
        )
    ]
    tol = bench.propose_tolerances(lines)[("s", "n")]
    assert tol["acc.*.mean"] == 0.03  # 3 x 0.01 on the 1-1.5-2-3-5-7 grid
    assert tol["seconds_per_epoch.sfw"] is None and tol["seconds_per_epoch.sgd"] is None
    assert tol["pretrain_seconds"] is None and tol["throughput_ratio"] is None
    assert tol["n"] == 1e-9
