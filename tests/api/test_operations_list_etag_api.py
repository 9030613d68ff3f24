"""``GET /operations`` answers an ETag and a 304 while nothing it lists changed: a dashboard left open polls it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.api.test_operations_api import create


def listed(api: httpx.Client, tag: str | None = None, **params: object) -> httpx.Response:
    headers = {"If-None-Match": tag} if tag else {}
    return api.get("/operations", params={"limit": 1000, "include": "best", **params}, headers=headers)


def test_an_unchanged_list_answers_304(api: httpx.Client) -> None:
    create(api, name="a")
    first = listed(api)
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"

    again = listed(api, tag)
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    # the tag is weak: a strong copy of it (a proxy's) matches too, and a list of tags with it
    assert listed(api, tag.removeprefix("W/")).status_code == 304
    assert listed(api, f'"other", {tag}').status_code == 304
    # parameter order does not matter, the parameters do
    swapped = api.get("/operations", params={"include": "best", "limit": 1000}, headers={"If-None-Match": tag})
    assert swapped.status_code == 304
    assert listed(api, tag, limit=999).status_code == 200
    assert listed(api, tag, status="failed").status_code == 200


def _log_epoch(api: httpx.Client, operation_id: str) -> None:
    assert api.post(f"/operations/{operation_id}/metrics", json={"epoch": 1, "val_loss": 0.5}).status_code == 200


def _rename(api: httpx.Client, operation_id: str) -> None:
    assert api.patch(f"/operations/{operation_id}", json={"name": "renamed"}).status_code == 200


def _cancel(api: httpx.Client, operation_id: str) -> None:
    cancelled = api.request("DELETE", f"/operations/{operation_id}", json={"reason": "enough"})
    assert cancelled.status_code == 200, cancelled.text


def _progress(api: httpx.Client, operation_id: str) -> None:
    sent = api.post(f"/operations/{operation_id}/progress", json={"phase": "training", "message": "Epoch 2/9"})
    assert sent.status_code == 200, sent.text


def _add_another(api: httpx.Client, operation_id: str) -> None:
    create(api, name="another")


@pytest.mark.parametrize(
    "change",
    [_log_epoch, _rename, _cancel, _progress, _add_another],
    ids=["epoch logged", "renamed", "cancelled", "progress", "run added"],
)
def test_any_change_to_a_listed_run_changes_the_etag(
    api: httpx.Client, change: Callable[[httpx.Client, str], None]
) -> None:
    operation_id = create(api, name="watched", total_epochs=9)
    _log_epoch_zero = api.post(f"/operations/{operation_id}/metrics", json={"epoch": 0, "val_loss": 0.9})
    assert _log_epoch_zero.status_code == 200
    first = listed(api)
    tag = first.headers["etag"]
    assert listed(api, tag).status_code == 304

    change(api, operation_id)

    after = listed(api, tag)
    assert after.status_code == 200
    assert after.headers["etag"] != tag
    assert after.json()["data"] != first.json()["data"]
    assert listed(api, after.headers["etag"]).status_code == 304


def test_a_deleted_run_changes_the_etag(api: httpx.Client) -> None:
    kept = create(api, name="kept")
    gone = create(api, name="gone")
    for operation_id in (kept, gone):
        done = api.post(f"/operations/{operation_id}/complete", json={"status": "completed"})
        assert done.status_code == 200, done.text
    tag = listed(api).headers["etag"]

    assert api.request("DELETE", f"/operations/{gone}", params={"purge": "true"}).status_code == 200

    after = listed(api, tag)
    assert after.status_code == 200
    assert [item["operation_id"] for item in after.json()["data"]["items"]] == [kept]


def test_a_deleted_run_replaced_by_a_new_one_changes_the_etag(api: httpx.Client) -> None:
    """The newest run purged and another created between two polls: the count is the same, the run is not."""
    create(api, name="old")
    newest = create(api, name="newest")
    assert api.post(f"/operations/{newest}/complete", json={"status": "completed"}).status_code == 200
    tag = listed(api).headers["etag"]

    assert api.request("DELETE", f"/operations/{newest}", params={"purge": "true"}).status_code == 200
    create(api, name="replacement")

    after = listed(api, tag)
    assert after.status_code == 200
    assert sorted(item["name"] for item in after.json()["data"]["items"]) == ["old", "replacement"]


def test_a_filtered_list_follows_the_runs_it_matches(api: httpx.Client) -> None:
    """A run leaving the filter changes the filtered list's tag; a change to a run it never matched does not."""
    failing = create(api, name="failing")
    other = create(api, name="other")
    assert api.post(f"/operations/{failing}/complete", json={"status": "failed", "error": "boom"}).status_code == 200
    failed_tag = listed(api, status="failed").headers["etag"]
    running_tag = listed(api, status="running").headers["etag"]

    _log_epoch(api, other)  # starts it: it enters status=running, and never matched status=failed

    assert listed(api, failed_tag, status="failed").status_code == 304
    entered = listed(api, running_tag, status="running")
    assert entered.status_code == 200
    assert [item["operation_id"] for item in entered.json()["data"]["items"]] == [other]
    # a search: the run renamed out of it
    found = listed(api, q="other")
    _rename(api, other)
    left = listed(api, found.headers["etag"], q="other")
    assert left.status_code == 200
    assert left.json()["data"]["items"] == []
