"""KFP recurring runs through kfp.Client against a stand-in built from KFP's v2beta1 swagger
(kfp_api_double.py): exact requests, the server's marshalling, paging and controller."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kfp_api_double import KfpApiDouble
from typer.testing import CliRunner

from workbench_dsl.cli.app import app

runner = CliRunner()
PIPELINE = """\
pipelineInfo: {name: tiny}
root:
  dag: {tasks: {}}
  inputDefinitions:
    parameters:
      n: {parameterType: NUMBER_INTEGER, defaultValue: 1.0}
schemaVersion: 2.1.0
sdkVersion: kfp-2.17.0
"""
HOUR = timedelta(hours=1)


@pytest.fixture
def kfp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KF_PIPELINES_ENDPOINT", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(PIPELINE)
    d = KfpApiDouble(stateful=True)
    yield d
    d.close()
    assert d.violations == []  # every request matched KFP's v2beta1 definition


def cli(kfp: KfpApiDouble, *args: str) -> Any:
    return runner.invoke(app, ["schedule", *args, "--target", "kfp", "--host", kfp.url, "--json"])


def out(r: Any) -> Any:
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def add_hourly(kfp: KfpApiDouble, *extra: str) -> dict[str, Any]:
    return out(cli(kfp, "add", "tiny.yaml", "--cron", "0 * * * *", "--name", "nightly", *extra))


def test_add_sends_a_valid_recurring_run_and_show_reads_omitted_defaults(
    kfp: KfpApiDouble,
) -> None:
    rr = add_hourly(kfp, "-p", "n=5", "--max-concurrency", "2")
    body = next(
        r["body"] for r in kfp.requests if r["method"] == "POST" and "recurring" in r["path"]
    )
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 * * * *"}}
    assert (body["mode"], body["max_concurrency"], body["no_catchup"]) == ("ENABLE", 2, False)
    assert body["runtime_config"] == {"parameters": {"n": 5}}
    # the server leaves no_catchup out when false: catch-up is on, not unknown
    listed = next(r for r in kfp.requests if r["path"] == "/apis/v2beta1/recurringruns")
    assert listed["query"]["page_size"] == "200"
    shown = out(cli(kfp, "show", "nightly"))
    assert (shown["catchup"], shown["paused"], shown["max_concurrency"]) == (True, False, 2)
    assert "no_catchup" not in shown["raw"] or shown["raw"]["no_catchup"] in (None, False)
    assert shown["recurring_run_id"] == rr["recurring_run_id"] and shown["runs_in_flight"] == []
    r = cli(kfp, "update", "nightly", "--no-catchup")
    assert out(cli(kfp, "show", "nightly"))["catchup"] is False, r.output


def test_bad_input_is_refused_before_any_request(kfp: KfpApiDouble) -> None:
    r = cli(kfp, "add", "tiny.yaml", "--cron", "0 3 * * 0", "--max-concurrency", "11")
    assert r.exit_code == 2 and "KFP allows 1 to 10" in r.output
    r = cli(kfp, "add", "tiny.yaml", "--cron", "0 3 * * 0", "--timezone", "Europe/Berlin")
    assert r.exit_code == 2 and "cronScheduleTimezone" in r.output
    r = cli(kfp, "add", "tiny.yaml", "--cron", "0 3 * *")
    assert r.exit_code == 2 and "has 4 field(s)" in r.output
    r = cli(kfp, "update", "nightly", "--max-concurrency", "12")
    assert r.exit_code == 2 and "KFP allows 1 to 10" in r.output
    assert kfp.requests == []


def test_update_with_a_run_in_flight_never_fires_a_tick_twice(kfp: KfpApiDouble) -> None:
    old = add_hourly(kfp)["recurring_run_id"]
    (first,) = kfp.advance(kfp.now + HOUR)  # 11:00 tick, still running
    kfp.now += timedelta(minutes=59, seconds=59)  # 11:59:59, just before the 12:00 tick
    kfp.requests.clear()
    upd = out(cli(kfp, "update", "nightly", "-p", "n=9"))
    # the old version stops before the new one exists; the new one starts where it stopped
    writes = kfp.writes()
    assert writes[0] == ("POST", f"/apis/v2beta1/recurringruns/{old}:disable")
    assert writes[1] == ("POST", "/apis/v2beta1/recurringruns")
    assert writes[2] == ("DELETE", f"/apis/v2beta1/recurringruns/{old}")
    create = next(
        r["body"]
        for r in kfp.requests
        if r["path"] == "/apis/v2beta1/recurringruns" and r["method"] == "POST"
    )
    assert create["trigger"]["cron_schedule"]["start_time"] == "2026-03-02T11:59:59Z"
    assert create["description"] == f"workbench schedule: replaces recurring run {old}"
    delete = next(r for r in kfp.requests if r["method"] == "DELETE")
    assert delete["query"] == {"propagation_policy": "ORPHAN"}  # KFP 2.17: runs go on
    assert upd["replaced_deleted"] is True and upd["replaced_runs_in_flight"] == [first["run_id"]]
    # the run in flight was not stopped, and each later tick ran exactly once
    for _ in range(3):
        for run in kfp.advance(kfp.now + HOUR):
            kfp.finish(run["run_id"])
    assert kfp.killed == [] and kfp.runs[first["run_id"]]["state"] == "RUNNING"
    ticks = [r["scheduled_at"].hour for r in kfp.runs.values()]
    assert sorted(ticks) == [11, 12, 13, 14]
    new = upd["recurring_run_id"]
    assert [r["recurring_run_id"] for r in kfp.runs.values() if r["scheduled_at"].hour > 11] == [
        new
    ] * 3


def test_update_on_a_pre_orphan_server_keeps_the_old_version_until_idle(
    kfp: KfpApiDouble,
) -> None:
    kfp.version = "2.15.0"
    old = add_hourly(kfp)["recurring_run_id"]
    (first,) = kfp.advance(kfp.now + HOUR)
    r = runner.invoke(
        app, ["schedule", "update", "nightly", "--target", "kfp", "--host", kfp.url, "-p", "n=2"]
    )
    assert r.exit_code == 0 and "kept while its 1 run(s) in flight finish" in r.stdout
    assert kfp.recurring_runs[old]["mode"] == "DISABLE"
    assert not [c for c in kfp.writes() if c[0] == "DELETE"]
    upd = out(cli(kfp, "update", "nightly", "--cron", "30 * * * *"))
    assert upd["superseded_deleted"] == [] and old in kfp.recurring_runs
    rows = out(cli(kfp, "list"))
    assert [(x["recurring_run_id"] == old, x["superseded"]) for x in rows] == [
        (True, True),
        (False, False),
    ]
    assert out(cli(kfp, "show", "nightly"))["cron"] == "0 30 * * * *"
    kfp.finish(first["run_id"])
    out(cli(kfp, "update", "nightly", "-p", "n=3"))
    assert old not in kfp.recurring_runs and kfp.killed == []
    assert [rr["display_name"] for rr in kfp.recurring_runs.values()] == ["nightly"]


def test_delete_finds_runs_in_flight_beyond_the_first_page(kfp: KfpApiDouble) -> None:
    kfp.version = "2.15.0"
    rid = add_hourly(kfp)["recurring_run_id"]
    other = out(cli(kfp, "add", "tiny.yaml", "--cron", "0 3 * * *", "--name", "other"))
    kfp.add_runs(rid, 450)  # finished history
    kfp.add_runs(other["recurring_run_id"], 30, state="RUNNING")  # not ours
    (busy,) = kfp.advance(kfp.now + HOUR)  # the newest is in flight
    kfp.requests.clear()
    r = cli(kfp, "delete", "nightly")
    assert r.exit_code == 2 and "1 run(s) in flight" in r.output and busy["run_id"] in r.output
    assert "--force" in r.output and "kubeflow/pipelines#12573" in r.output
    assert not [c for c in kfp.writes() if c[0] == "DELETE"]
    runs_q = [r["query"] for r in kfp.requests if r["path"] == "/apis/v2beta1/runs"]
    flt = json.loads(runs_q[0]["filter"])["predicates"]
    assert {p["key"] for p in flt} == {"recurring_run_id", "state"}
    # --force says what it stopped
    r = runner.invoke(
        app, ["schedule", "delete", "nightly", "--force", "--target", "kfp", "--host", kfp.url]
    )
    assert r.exit_code == 0 and busy["run_id"] in r.stdout and "stopped" in r.stdout
    assert kfp.killed == [busy["run_id"]]


def test_delete_pages_through_many_runs_in_flight_and_orphans_them(kfp: KfpApiDouble) -> None:
    rid = add_hourly(kfp, "--max-concurrency", "10")["recurring_run_id"]
    kfp.add_runs(rid, 380)
    in_flight = kfp.add_runs(rid, 230, state="RUNNING")
    kfp.requests.clear()
    data = out(cli(kfp, "delete", "nightly"))
    assert sorted(data["runs_in_flight"]) == sorted(in_flight) and data["runs_stopped"] == []
    pages = [r for r in kfp.requests if r["path"] == "/apis/v2beta1/runs"]
    assert len(pages) == 2 and pages[1]["query"]["page_token"]
    assert kfp.killed == [] and rid not in kfp.recurring_runs


def test_delete_on_a_server_of_unknown_version(kfp: KfpApiDouble) -> None:
    kfp.version = "unknown"
    rid = add_hourly(kfp)["recurring_run_id"]
    kfp.advance(kfp.now + HOUR)
    r = cli(kfp, "delete", "nightly")
    assert r.exit_code == 2 and "--kfp-version 2.16" in r.output
    r = cli(kfp, "delete", "nightly", "--kfp-version", "2.17")
    assert out(r)["propagation_policy"] == "ORPHAN" and rid not in kfp.recurring_runs


def test_resume_after_missed_ticks_starts_from_now_like_a_local_schedule(
    kfp: KfpApiDouble,
) -> None:
    add_hourly(kfp)
    for run in kfp.advance(kfp.now + HOUR):  # 11:00 runs
        kfp.finish(run["run_id"])
    out(cli(kfp, "pause", "nightly"))
    kfp.advance(kfp.now + 3 * HOUR + timedelta(minutes=5))  # 12:00, 13:00, 14:00 missed
    assert len(kfp.runs) == 1
    r = runner.invoke(app, ["schedule", "resume", "nightly", "--target", "kfp", "--host", kfp.url])
    assert r.exit_code == 0 and "the 3 tick(s) missed while paused do not run" in r.stdout
    assert kfp.advance(kfp.now + timedelta(minutes=50)) == []
    (nxt,) = kfp.advance(kfp.now + timedelta(minutes=10))
    assert nxt["scheduled_at"].hour == 15 and kfp.killed == []


def test_resume_run_missed_lets_kfp_catch_up(kfp: KfpApiDouble) -> None:
    add_hourly(kfp, "--max-concurrency", "5")
    out(cli(kfp, "pause", "nightly"))
    kfp.advance(kfp.now + 3 * HOUR + timedelta(minutes=5))  # 11:00, 12:00, 13:00 missed
    data = out(cli(kfp, "resume", "nightly", "--run-missed"))
    assert (data["missed_ticks"], data["will_run_missed"], data["paused"]) == (3, 3, False)
    started = kfp.advance(kfp.now + timedelta(minutes=1))
    assert [s["scheduled_at"].hour for s in started] == [11, 12, 13]


def test_resume_with_nothing_missed_just_enables(kfp: KfpApiDouble) -> None:
    rid = add_hourly(kfp)["recurring_run_id"]
    out(cli(kfp, "pause", "nightly"))
    kfp.advance(kfp.now + timedelta(minutes=30))
    kfp.requests.clear()
    data = out(cli(kfp, "resume", "nightly"))
    assert data["missed_ticks"] == 0 and data["recurring_run_id"] == rid
    assert kfp.writes() == [("POST", f"/apis/v2beta1/recurringruns/{rid}:enable")]


def test_pause_keeps_runs_in_flight_and_list(kfp: KfpApiDouble) -> None:
    add_hourly(kfp)
    (run,) = kfp.advance(kfp.now + HOUR)
    assert out(cli(kfp, "pause", "nightly"))["paused"] is True
    assert kfp.runs[run["run_id"]]["state"] == "RUNNING" and kfp.advance(kfp.now + HOUR) == []
    rows = out(cli(kfp, "list"))
    assert [(x["name"], x["paused"], x["catchup"]) for x in rows] == [("nightly", True, True)]


def test_a_healthz_the_gateway_hides_reads_as_an_unknown_version(kfp: KfpApiDouble) -> None:
    add_hourly(kfp)
    kfp.advance(kfp.now + HOUR)
    kfp.routes[("GET", "/apis/v2beta1/healthz")] = (503, {"code": 14, "message": "unavailable"})
    args = ["schedule", "delete", "nightly", "--target", "kfp", "--host", kfp.url]
    r = runner.invoke(app, [*args, "--namespace", "team-a"])
    assert r.exit_code == 2 and "KFP unknown" in r.output and "--kfp-version 2.16" in r.output
    assert not [c for c in kfp.writes() if c[0] == "DELETE"]
