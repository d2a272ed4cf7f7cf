"""Hot reload: new revisions and alias moves are served within 2 s, without failing requests."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable

import httpx
from gateway_support import Behaving, MemorySource

from flotilla.gateway import Gateway, create_app

ROW = {"x": 3.0, "plan": "pro"}
STATIC = {"static": {"value": 0.0}}


def served_by(client: httpx.Client, model: str) -> str:
    r = client.post(f"/v1/models/{model}:predict", json={"instances": [ROW]})
    assert r.status_code == 200, r.text
    return str(r.json()["served_by"]["ref"])


def wait_for(check: Callable[[], bool], seconds: float) -> float:
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if check():
            return time.monotonic() - began
        time.sleep(0.05)
    raise AssertionError(f"not true within {seconds} s")


def test_new_revision_is_picked_up_within_two_seconds(
    source: MemorySource, serve: Callable[[Gateway], httpx.Client]
) -> None:
    source.add("recs@1", Behaving(0.1))
    source.add("recs@2", Behaving(0.2))
    source.deploy("recs", "recs@1", STATIC)
    client = serve(create_app(source))  # the default poll interval (1 s)
    assert served_by(client, "recs") == "recs@1"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        load = [pool.submit(served_by, client, "recs") for _ in range(40)]
        source.deploy("recs", "recs@2", STATIC)
        took = wait_for(lambda: served_by(client, "recs") == "recs@2", 2.0)
        assert all(f.result() in {"recs@1", "recs@2"} for f in load)  # no request failed
    assert took < 2.0
    assert client.get("/v1/models/recs").json()["revision"] == 2


def test_serving_follows_an_alias_when_it_moves(
    source: MemorySource, serve: Callable[[Gateway], httpx.Client]
) -> None:
    source.add("recs@1", Behaving(0.1))
    source.add("recs@2", Behaving(0.2))
    source.alias("recs", "champion", "recs@1")
    source.deploy("recs", "recs@champion", STATIC)
    client = serve(create_app(source, poll_interval_s=0.1))
    assert served_by(client, "recs") == "recs@1"
    source.alias("recs", "champion", "recs@2")
    wait_for(lambda: served_by(client, "recs") == "recs@2", 2.0)
    assert client.get("/v1/models").json()["models"][0]["live"] == "recs@2"


def test_loaded_versions_are_reused_across_reloads(
    source: MemorySource, serve: Callable[[Gateway], httpx.Client]
) -> None:
    source.add("recs@1", Behaving(0.1))
    source.add("other@1", Behaving(0.3))
    source.deploy("recs", "recs@1", STATIC)
    client = serve(create_app(source, poll_interval_s=0.1))
    source.deploy("other", "other@1", STATIC)
    wait_for(lambda: client.get("/v1/models/other").status_code == 200, 2.0)
    assert source.loads == ["recs@1", "other@1"]


def test_a_new_model_becomes_servable_and_a_removed_one_404s(
    source: MemorySource, serve: Callable[[Gateway], httpx.Client]
) -> None:
    source.add("recs@1", Behaving(0.1))
    source.deploy("recs", "recs@1", STATIC)
    client = serve(create_app(source, poll_interval_s=0.1))
    del source.deployments["recs"]
    source.version_no += 1
    wait_for(
        lambda: (
            client.post("/v1/models/recs:predict", json={"instances": [ROW]}).status_code == 404
        ),
        2.0,
    )


def test_freeze_gc_freezes_the_loaded_heap_and_again_after_a_reload(
    source: MemorySource, serve: Callable[[Gateway], httpx.Client]
) -> None:
    import gc

    gc.unfreeze()
    try:
        source.add("recs@1", Behaving(0.1))
        source.add("recs@2", Behaving(0.2))
        source.deploy("recs", "recs@1", STATIC)
        client = serve(create_app(source, freeze_gc=True, poll_interval_s=0.05))
        frozen = gc.get_freeze_count()
        assert frozen > 0  # the heap with the loaded models is out of the collector's scans
        assert served_by(client, "recs") == "recs@1"
        source.deploy("recs", "recs@2", STATIC)
        wait_for(lambda: served_by(client, "recs") == "recs@2", 2.0)
        assert gc.get_freeze_count() > frozen  # the new state was frozen after the swap
    finally:
        gc.unfreeze()


def test_the_heap_is_left_alone_unless_asked(
    source: MemorySource, serve: Callable[[Gateway], httpx.Client]
) -> None:
    import gc

    gc.unfreeze()
    source.add("recs@1", Behaving(0.1))
    source.deploy("recs", "recs@1", STATIC)
    client = serve(create_app(source))
    assert served_by(client, "recs") == "recs@1"
    assert gc.get_freeze_count() == 0
