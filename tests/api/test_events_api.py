"""GET /operations/{id}/events over real HTTP: the SSE wire format, a live run read to its end, resuming with
Last-Event-ID (on another server process too), keep-alives, an ended run, and bad requests."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.test_operations_api import create
from tests.live_server import LiveServer
from trainops.api.routes.events import EventTiming
from trainops.errors import ConfigurationError
from trainops.settings import Settings, get_settings

FAST = EventTiming(poll_interval=0.02, keepalive=0.3, retry_ms=500)


@pytest.fixture
def fast(live_server: LiveServer) -> LiveServer:
    live_server.server.config.app.state.event_timing = FAST
    return live_server


Frame = dict[str, Any]


def frames(response: httpx.Response) -> Iterator[Frame]:
    """The stream's blocks as sent: each event's fields (``data`` parsed), comments as ``{"comment": ...}``,
    ``retry`` as sent. Checks the wire format on the way: known fields only, one ``data`` line per event."""
    block: Frame = {}
    for line in response.iter_lines():
        if not line:
            if block:
                yield block
            block = {}
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "":
            block["comment"] = value
        elif field == "data":
            assert "data" not in block, f"one data line per event: {line!r}"
            block["data"] = json.loads(value)
        else:
            assert field in {"id", "event", "retry"}, f"not an SSE field: {line!r}"
            block[field] = value
    assert not block, f"an unfinished event at the end of the stream: {block}"


def events_of(blocks: list[Frame]) -> list[Frame]:
    return [block for block in blocks if "event" in block]


def epochs_in(events: list[Frame]) -> list[int]:
    return [record["epoch"] for event in events if event["event"] == "epochs" for record in event["data"]["epochs"]]


def open_stream(client: httpx.Client, operation_id: str, last_event_id: str | None = None) -> Any:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    return client.stream("GET", f"/operations/{operation_id}/events", headers=headers)


def read_in_thread(url: str, operation_id: str) -> tuple[threading.Thread, queue.Queue[Frame | None]]:
    """A reader consuming the whole stream on its own connection, each block put on the queue, ``None`` at the
    end."""
    received: queue.Queue[Frame | None] = queue.Queue()

    def read() -> None:
        with httpx.Client(base_url=f"{url}/api/v1", timeout=30) as client, open_stream(client, operation_id) as r:
            assert r.status_code == 200
            for block in frames(r):
                received.put(block)
        received.put(None)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, received


def drain(received: queue.Queue[Frame | None], timeout: float = 20) -> list[Frame]:
    blocks = []
    while (block := received.get(timeout=timeout)) is not None:
        blocks.append(block)
    return blocks


def post_epochs(api: httpx.Client, operation_id: str, epochs: range) -> None:
    for epoch in epochs:
        loss = 1.0 / (epoch + 1)
        response = api.post(
            f"/operations/{operation_id}/metrics", json={"epoch": epoch, "train_loss": loss, "val_loss": loss + 0.1}
        )
        assert response.status_code == 200, response.text
        time.sleep(0.01)


def test_a_live_run_streams_every_epoch_once_in_order_then_its_end(fast: LiveServer, api: httpx.Client) -> None:
    operation_id = create(api, total_epochs=12)
    thread, received = read_in_thread(fast.url, operation_id)
    first = received.get(timeout=20)
    assert first == {"retry": "500"}

    api.post(f"/operations/{operation_id}/progress", json={"percentage": 10.0, "phase": "training", "message": "go"})
    post_epochs(api, operation_id, range(12))
    api.post(f"/operations/{operation_id}/complete", json={"status": "completed", "result": {"ok": True}})
    blocks = drain(received)
    thread.join(timeout=10)

    events = events_of(blocks)
    assert epochs_in(events) == list(range(12))
    for event in events:
        assert event["data"]["event"] == event["event"] and event["data"]["id"] == event["id"]
        assert event["data"]["operation_id"] == operation_id
    ids = [event["id"] for event in events]
    assert len(set(ids)) == len(ids)
    statuses = [event["data"]["status"] for event in events if event["event"] == "status"]
    assert statuses == ["pending", "running", "completed"]
    assert [event["event"] for event in events[-2:]] == ["status", "diagnosis"]
    final = events[-1]["data"]
    assert final["status"] == "completed" and final["diagnosis"]["best_epoch"] == 11
    assert any(e["event"] == "progress" and e["data"]["progress"]["message"] == "go" for e in events)
    assert any(e["event"] == "recommendation" and e["data"]["diagnosis"]["recommendation"] for e in events)


def test_reconnecting_with_last_event_id_resumes_with_no_gap_and_no_duplicate(
    fast: LiveServer, api: httpx.Client, settings: Settings
) -> None:
    operation_id = create(api)
    post_epochs(api, operation_id, range(5))
    with open_stream(api, operation_id) as response:
        before = []
        for block in frames(response):
            before.append(block)
            if block.get("event") == "status":  # the state of a reader that is up to date
                break
    # while nobody reads: more epochs, a re-written epoch (it changed, so it comes again) and a cancel request
    post_epochs(api, operation_id, range(5, 9))
    api.post(f"/operations/{operation_id}/metrics", json={"epoch": 2, "train_loss": 0.3, "val_loss": 0.35})
    api.post(f"/operations/{operation_id}/cancel", json={"reason": "enough"})
    last_id = events_of(before)[-1]["id"]

    # resumed on another server process over the same database: nothing lives in a server's memory
    def finish_the_run() -> None:
        post_epochs(api, operation_id, range(9, 11))
        api.post(f"/operations/{operation_id}/complete", json={"status": "cancelled"})

    writer = threading.Thread(target=finish_the_run, daemon=True)
    with LiveServer(settings) as other, httpx.Client(base_url=f"{other.url}/api/v1", timeout=30) as client:
        other.server.config.app.state.event_timing = FAST
        with open_stream(client, operation_id, last_id) as response:
            assert response.status_code == 200
            after = []
            for block in frames(response):
                after.append(block)
                if block.get("event") == "status" and writer.ident is None:
                    writer.start()  # the rest of the run happens while this reader follows it
        writer.join(timeout=10)

    first, resumed = events_of(before), events_of(after)
    assert epochs_in(first) == [0, 1, 2, 3, 4]
    assert epochs_in(resumed) == [2, 5, 6, 7, 8, 9, 10]  # the re-written epoch 2, then the new ones
    assert resumed[0]["data"]["epochs"][0]["train_loss"] == 0.3
    kinds = [event["event"] for event in resumed]
    assert "progress" not in kinds  # no progress was reported since: none comes again
    statuses = [(e["data"]["status"], e["data"]["cancel_requested"]) for e in resumed if e["event"] == "status"]
    assert statuses == [("running", True), ("cancelled", True)]
    assert kinds[-1] == "diagnosis"
    assert {e["id"] for e in first}.isdisjoint(e["id"] for e in resumed)

    # after the last event, a reconnection is told there is nothing more (EventSource stops on 204)
    with open_stream(api, operation_id, resumed[-1]["id"]) as response:
        assert response.status_code == 204


def test_keep_alive_comments_arrive_while_nothing_happens(fast: LiveServer, api: httpx.Client) -> None:
    operation_id = create(api)
    started = time.monotonic()
    with open_stream(api, operation_id) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        comments = 0
        for block in frames(response):
            if block.get("comment") == "keep-alive":
                comments += 1
                if comments == 2:
                    break
    assert time.monotonic() - started < 10


def test_an_ended_operation_sends_its_history_and_end_and_closes(fast: LiveServer, api: httpx.Client) -> None:
    operation_id = create(api)
    post_epochs(api, operation_id, range(4))
    api.post(f"/operations/{operation_id}/complete", json={"status": "failed", "error": "out of memory"})

    started = time.monotonic()
    with open_stream(api, operation_id) as response:
        events = events_of(list(frames(response)))
    assert time.monotonic() - started < 5
    assert [event["event"] for event in events] == ["epochs", "progress", "recommendation", "status", "diagnosis"]
    assert epochs_in(events) == [0, 1, 2, 3]
    assert events[3]["data"]["status"] == "failed" and events[3]["data"]["error"] == "out of memory"
    assert events[4]["data"]["diagnosis"]["epochs_analyzed"] == 4


def test_an_operation_without_epochs_ends_with_no_diagnosis(fast: LiveServer, api: httpx.Client) -> None:
    operation_id = create(api)
    api.delete(f"/operations/{operation_id}", params={"reason": "not needed"})
    with open_stream(api, operation_id) as response:
        events = events_of(list(frames(response)))
    assert [event["event"] for event in events] == ["progress", "status", "diagnosis"]
    assert events[-1]["data"] == {**events[-1]["data"], "status": "cancelled", "diagnosis": None}


def test_unknown_operation_and_foreign_event_ids_are_refused_before_the_stream(api: httpx.Client) -> None:
    missing = api.get("/operations/op_training_20250101_000000_deadbeef/events")
    assert missing.status_code == 404
    assert missing.json()["success"] is False and missing.json()["error"]["code"] == "not_found"

    operation_id = create(api)
    bad = api.get(f"/operations/{operation_id}/events", headers={"Last-Event-ID": "yesterday"})
    assert bad.status_code == 422
    assert "Last-Event-ID 'yesterday' is not an id of this stream" in bad.json()["error"]["message"]

    # versions past the database's integers (32-bit, then 64-bit), and one within them past this run's latest
    for version in ("2147483648", "9223372036854775808", "9999999999999999999", "2147483647", "5"):
        foreign = api.get(f"/operations/{operation_id}/events", headers={"Last-Event-ID": f"{version}.-.-.-"})
        assert foreign.status_code == 422, foreign.text
        assert "is not an id of this stream" in foreign.json()["error"]["message"]


def test_the_stream_needs_the_bearer_token_when_the_server_has_one(settings: Settings) -> None:
    token = "s3cret-token-0123456789"
    secured = settings.model_copy(update={"api_token": token})
    with LiveServer(secured) as server, httpx.Client(base_url=f"{server.url}/api/v1", timeout=30) as client:
        headers = {"Authorization": f"Bearer {token}"}
        operation_id = client.post("/operations", json={}, headers=headers).json()["data"]["operation_id"]
        client.post(f"/operations/{operation_id}/complete", json={"status": "completed"}, headers=headers)

        refused = client.get(f"/operations/{operation_id}/events")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        with client.stream("GET", f"/operations/{operation_id}/events", headers=headers) as response:
            assert response.status_code == 200
            assert events_of(list(frames(response)))[-1]["event"] == "diagnosis"
        paths = client.get("/openapi.json").json()["paths"]
        assert (
            "text/event-stream"
            in paths["/api/v1/operations/{operation_id}/events"]["get"]["responses"]["200"]["content"]
        )


def test_points_thins_a_long_catch_up_and_later_epochs_come_whole(fast: LiveServer, api: httpx.Client) -> None:
    operation_id = create(api, total_epochs=203)
    epochs = [{"epoch": e, "train_loss": 1 / (e + 1), "val_loss": 1 / (e + 1) + 0.2} for e in range(200)]
    epochs[77]["val_loss"] = 9.0
    api.post(f"/operations/{operation_id}/metrics", json={"epochs": epochs}).raise_for_status()
    url = f"/operations/{operation_id}/events"

    with httpx.Client(base_url=f"{fast.url}/api/v1", timeout=30) as reader:
        with reader.stream("GET", url, params={"points": 20}) as response:
            assert response.status_code == 200
            blocks = []
            for block in frames(response):
                blocks.append(block)
                if block.get("event") == "status" and len(events_of(blocks)) == 4:
                    post_epochs(api, operation_id, range(200, 203))  # new epochs while the reader follows
                    api.post(f"/operations/{operation_id}/complete", json={"status": "completed"})
        events = events_of(blocks)

        catch_up, *later = [event for event in events if event["event"] == "epochs"]
        kept = [record["epoch"] for record in catch_up["data"]["epochs"]]
        best = next(e for e in events if e["event"] == "recommendation")["data"]["diagnosis"]["best_epoch"]
        assert catch_up["data"]["thinned"] is True
        assert len(kept) <= 20 and {0, 77, 199, best} <= set(kept)
        assert epochs_in(later) == [200, 201, 202]
        assert all(event["data"]["thinned"] is False for event in later)
        assert events[-1]["event"] == "diagnosis" and events[-1]["data"]["diagnosis"]["epochs_analyzed"] == 203

        # the thinned event's id resumes after every epoch it stood for, as an unthinned one would
        with reader.stream("GET", url, params={"points": 20}, headers={"Last-Event-ID": catch_up["id"]}) as response:
            resumed = events_of(list(frames(response)))
        assert epochs_in(resumed) == [200, 201, 202]

        # without points, the same history comes whole
        with reader.stream("GET", url) as response:
            whole = events_of(list(frames(response)))
        assert epochs_in(whole) == list(range(203)) and whole[0]["data"]["thinned"] is False

    refused = api.get(url, params={"points": 5})
    assert refused.status_code == 422
    assert refused.json()["error"]["message"].startswith("query.points: Input should be greater than or equal to 10")


def test_the_stream_takes_its_intervals_from_the_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINOPS_EVENTS_POLL_INTERVAL", "0.05")
    monkeypatch.setenv("TRAINOPS_EVENTS_KEEPALIVE", "0.2")
    get_settings.cache_clear()
    chosen = get_settings()
    assert (chosen.events_poll_interval, chosen.events_keepalive) == (0.05, 0.2)
    assert (settings.events_poll_interval, settings.events_keepalive) == (0.25, 15.0)  # the defaults

    # no app.state.event_timing here: the server's settings decide
    with LiveServer(chosen) as server, httpx.Client(base_url=f"{server.url}/api/v1", timeout=30) as client:
        operation_id = create(client)
        started = time.monotonic()
        with open_stream(client, operation_id) as response:
            for block in frames(response):
                if block.get("comment") == "keep-alive":
                    break
        # with the default 15 s keep-alive, this comment would come 15 s after the first events
        assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TRAINOPS_EVENTS_POLL_INTERVAL", "0", "TRAINOPS_EVENTS_POLL_INTERVAL: Input should be greater than 0"),
        ("TRAINOPS_EVENTS_KEEPALIVE", "-1", "TRAINOPS_EVENTS_KEEPALIVE: Input should be greater than 0"),
        ("TRAINOPS_EVENTS_KEEPALIVE", "often", "TRAINOPS_EVENTS_KEEPALIVE: Input should be a valid number"),
    ],
)
def test_unusable_stream_intervals_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match=message):
            get_settings()
    finally:
        get_settings.cache_clear()
