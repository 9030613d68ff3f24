"""``GET /operations/{id}/metrics?from_epoch=&to_epoch=``: a range of the history (what a zoomed chart asks for),
validated, thinned within the range with ``points``, each range with its own ETag, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest


def long_run(api: httpx.Client, count: int = 400) -> str:
    response = api.post("/operations", json={"operation_type": "training", "total_epochs": count})
    assert response.status_code == 201, response.text
    operation_id: str = response.json()["data"]["operation_id"]
    epochs = [{"epoch": e, "train_loss": 1 / (e + 1), "val_loss": 1 / (e + 1) + 0.2} for e in range(count)]
    epochs[count * 5 // 8]["val_loss"] = "NaN"  # epoch 250 of 400
    api.post(f"/operations/{operation_id}/metrics", json={"epochs": epochs}).raise_for_status()
    return operation_id


def kept(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [record["epoch"] for record in response.json()["data"]["metrics"]["epochs"]]


def test_a_range_answers_its_epochs_whole_and_the_diagnosis_of_the_run(api: httpx.Client) -> None:
    operation_id = long_run(api)
    url = f"/operations/{operation_id}/metrics"
    whole = api.get(url).json()["data"]["metrics"]

    answer = api.get(url, params={"from_epoch": 240, "to_epoch": 269})
    metrics = answer.json()["data"]["metrics"]
    assert kept(answer) == list(range(240, 270))  # both bounds inclusive
    assert metrics["epochs"] == whole["epochs"][240:270]  # records whole, NaN as stored
    assert (metrics["thinned"], metrics["epochs_stored"]) == (False, 400)
    diagnosis = {name: value for name, value in whole.items() if name != "epochs"}
    assert {name: metrics[name] for name in diagnosis} == diagnosis  # judged on the whole history

    assert kept(api.get(url, params={"from_epoch": 395})) == list(range(395, 400))  # open-ended
    assert kept(api.get(url, params={"to_epoch": 4})) == list(range(5))
    assert kept(api.get(url, params={"from_epoch": 7, "to_epoch": 7})) == [7]
    assert kept(api.get(url, params={"from_epoch": 500, "to_epoch": 900})) == []
    # with since_epoch both apply
    assert kept(api.get(url, params={"from_epoch": 10, "to_epoch": 20, "since_epoch": 15})) == list(range(16, 21))
    # the export takes the range too
    csv = api.get(url, params={"format": "csv", "from_epoch": 3, "to_epoch": 5})
    assert csv.status_code == 200 and [line.split(",")[0] for line in csv.text.splitlines()[1:]] == ["3", "4", "5"]


def test_points_thins_within_the_range(api: httpx.Client) -> None:
    operation_id = long_run(api)
    url = f"/operations/{operation_id}/metrics"

    thin = api.get(url, params={"from_epoch": 100, "to_epoch": 299, "points": 40})
    epochs = kept(thin)
    assert thin.json()["data"]["metrics"]["thinned"] is True
    assert len(epochs) <= 40 and epochs == sorted(epochs)
    assert epochs[0] == 100 and epochs[-1] == 299 and 250 in epochs  # the range's ends and its NaN kept
    assert min(epochs) >= 100 and max(epochs) <= 299

    fits = api.get(url, params={"from_epoch": 100, "to_epoch": 129, "points": 40})
    assert kept(fits) == list(range(100, 130)) and fits.json()["data"]["metrics"]["thinned"] is False


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from_epoch": 30, "to_epoch": 20}, "from_epoch (30) is after to_epoch (20)"),
        ({"from_epoch": -1}, "from_epoch"),
        ({"to_epoch": -5}, "to_epoch"),
        ({"from_epoch": "ten"}, "from_epoch"),
        ({"to_epoch": 1.5}, "to_epoch"),
        ({"series": "steps", "from_epoch": 3}, "from_epoch apply to series=epochs"),
        ({"format": "csv", "from_epoch": 30, "to_epoch": 20}, "from_epoch (30) is after to_epoch (20)"),
    ],
)
def test_a_bad_range_is_a_422_saying_why(api: httpx.Client, params: dict[str, object], message: str) -> None:
    operation_id = long_run(api, 10)
    response = api.get(f"/operations/{operation_id}/metrics", params=params)
    assert response.status_code == 422, response.text
    assert message in response.text


def test_each_range_has_its_own_etag(api: httpx.Client) -> None:
    operation_id = long_run(api, 50)
    url = f"/operations/{operation_id}/metrics"
    whole = api.get(url)
    first = api.get(url, params={"from_epoch": 10, "to_epoch": 19})
    second = api.get(url, params={"from_epoch": 20, "to_epoch": 29})
    thinned = api.get(url, params={"from_epoch": 10, "to_epoch": 29, "points": 10})
    tags = {response.headers["etag"] for response in (whole, first, second, thinned)}
    assert len(tags) == 4

    tag = first.headers["etag"]
    assert api.get(url, params={"from_epoch": 10, "to_epoch": 19}, headers={"If-None-Match": tag}).status_code == 304
    for other in ({"from_epoch": 20, "to_epoch": 29}, {"from_epoch": 10}, {}):
        answer = api.get(url, params=other, headers={"If-None-Match": tag})
        assert answer.status_code == 200, other

    api.post(url, json={"epoch": 50, "val_loss": 0.1}).raise_for_status()  # a new epoch outside the range
    after = api.get(url, params={"from_epoch": 10, "to_epoch": 19}, headers={"If-None-Match": tag})
    assert after.status_code == 200 and after.headers["etag"] != tag  # the diagnosis it carries changed
