"""LoopLag: the event loop's recent timer lateness, used as slack in the chain's budgets."""

from __future__ import annotations

import asyncio
import time

from flotilla.gateway._lag import LoopLag


def test_a_blocked_loop_raises_the_slack_until_the_window_forgets_it() -> None:
    async def scenario() -> tuple[float, float, float]:
        lag = LoopLag(interval_s=0.005, window=10)
        lag.start(asyncio.get_running_loop())
        await asyncio.sleep(0.05)
        calm = lag.slack_s
        time.sleep(0.04)  # the loop is stuck: the next probe fires about 40 ms late
        await asyncio.sleep(0.01)
        stuck = lag.slack_s
        await asyncio.sleep(0.2)  # more than window * interval of calm probes
        after = lag.slack_s
        lag.stop()
        return calm, stuck, after

    calm, stuck, after = asyncio.run(scenario())
    assert stuck >= 0.03
    assert calm < stuck and after < stuck


def test_stop_cancels_the_probe_and_resets_the_slack() -> None:
    async def scenario() -> float:
        lag = LoopLag(interval_s=0.005)
        lag.start(asyncio.get_running_loop())
        time.sleep(0.02)
        await asyncio.sleep(0.02)
        lag.stop()
        await asyncio.sleep(0.02)
        return lag.slack_s

    assert asyncio.run(scenario()) == 0.0
