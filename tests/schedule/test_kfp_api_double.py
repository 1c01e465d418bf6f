"""The KFP API stand-in refuses what KFP's v2beta1 definition refuses and answers as the
server marshals: proof that the schedule tests' green means something."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from kfp_api_double import KfpApiDouble


def call(d: KfpApiDouble, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(d.url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture
def d() -> Any:
    d = KfpApiDouble(stateful=True)
    yield d
    d.close()


def rr(**extra: Any) -> dict[str, Any]:
    return {
        "display_name": "nightly",
        "mode": "ENABLE",
        "max_concurrency": "1",
        "trigger": {"cron_schedule": {"cron": "0 0 3 * * *"}},
        "pipeline_spec": {"pipelineInfo": {"name": "p"}},
        **extra,
    }


def test_requests_outside_the_definition_are_refused(d: KfpApiDouble) -> None:
    assert call(d, "POST", "/apis/v2beta1/recurringruns", rr(catchup=True))[0] == 400
    assert call(d, "POST", "/apis/v2beta1/recurringruns", rr(mode="ON"))[0] == 400
    bad_time = rr(trigger={"cron_schedule": {"cron": "0 0 3 * * *", "start_time": "today"}})
    assert call(d, "POST", "/apis/v2beta1/recurringruns", bad_time)[0] == 400
    # the server would silently ignore an undeclared parameter: we would not be filtering
    assert call(d, "GET", "/apis/v2beta1/runs?recurring_run_id=x")[0] == 400
    assert call(d, "DELETE", "/apis/v2beta1/recurringruns/x?propagation_policy=KEEP")[0] == 400
    flt = json.dumps({"predicates": [{"operation": "IN", "key": "state", "string_values": ["A"]}]})
    assert call(d, "GET", "/apis/v2beta1/runs?filter=" + urllib.request.quote(flt))[0] == 400
    assert call(d, "POST", "/apis/v2beta1/recurringruns:pause")[0] == 404
    assert len(d.violations) == 7 and d.recurring_runs == {}


def test_answers_are_marshalled_like_the_server(d: KfpApiDouble) -> None:
    status, created = call(d, "POST", "/apis/v2beta1/recurringruns", rr(no_catchup=False))
    assert status == 200 and d.violations == []
    assert created["max_concurrency"] == "1"  # int64 as a string
    assert "no_catchup" not in created  # false is left out
    assert created["created_at"] == "2026-03-02T10:00:00Z" and created["mode"] == "ENABLE"
    status, err = call(d, "POST", "/apis/v2beta1/recurringruns", rr(max_concurrency=11))
    assert status == 400 and err["code"] == 3 and "at most 10" in err["message"]


def test_lists_page_and_filter_like_the_server(d: KfpApiDouble) -> None:
    rid = call(d, "POST", "/apis/v2beta1/recurringruns", rr())[1]["recurring_run_id"]
    d.add_runs(rid, 45)
    mine = d.add_runs(rid, 3, state="RUNNING")
    flt = json.dumps(
        {
            "predicates": [
                {"operation": "IN", "key": "state", "stringValues": {"values": ["RUNNING"]}}
            ]
        }
    )
    q = "filter=" + urllib.request.quote(flt)
    page1 = call(d, "GET", "/apis/v2beta1/runs?page_size=2&" + q)[1]
    assert page1["total_size"] == 3 and len(page1["runs"]) == 2
    tok = urllib.request.quote(page1["next_page_token"])
    page2 = call(d, "GET", f"/apis/v2beta1/runs?page_size=2&page_token={tok}&{q}")[1]
    assert "next_page_token" not in page2
    assert sorted(r["run_id"] for r in page1["runs"] + page2["runs"]) == sorted(mine)
    other = urllib.request.quote(json.dumps({"predicates": []}))
    status, _ = call(d, "GET", f"/apis/v2beta1/runs?page_token={tok}&filter={other}")
    assert status == 400  # a token is only good with the filter it was made with
    assert len(call(d, "GET", "/apis/v2beta1/runs")[1]["runs"]) == 20  # default page size
