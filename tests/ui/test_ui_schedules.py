"""The schedules page: next fire times and last runs; Pause and Resume change the schedule
exactly as ``workbench schedule pause/resume`` do."""

from __future__ import annotations

import time
from pathlib import Path

from ui_helpers import PORT, TOKEN, XSS, csrf_of, make_client

from workbench_dsl.schedule import cron
from workbench_dsl.schedule.store import Schedule, ScheduleStore


def _add(store: ScheduleStore, name: str, **kw: object) -> Schedule:
    now = time.time()
    s = Schedule(
        name=name,
        id="",
        pipeline=f"/work/{XSS}.py",
        workdir="/work",
        params={"rows": "5"},
        cron="0 3 * * *",
        timezone="Europe/Berlin",
        catchup=True,
        max_concurrency=1,
        paused=False,
        created_at=now,
        updated_at=now,
        start_after=cron.iso(cron.now_utc()),
    )
    for k, v in kw.items():
        setattr(s, k, v)
    return store.add(s)


def test_pause_and_resume_from_the_page(workbench_home: Path) -> None:
    store = ScheduleStore(workbench_home / "runs.db")
    s = _add(store, "nightly")
    tick = "2026-01-01T02:00:00Z"
    assert store.claim(s, tick, output="/o.json", log="/o.log") == "claimed"
    store.set_tick(f"{s.id}@{tick}", status="SUCCEEDED", run_id="abc123abc123")
    c = make_client(workbench_home)
    c.cookies.set(f"workbench_ui_token_{PORT}", TOKEN)
    html = c.get("/schedules").text
    assert "0 3 * * *" in html and "Europe/Berlin" in html
    assert html.count("<li>") == 5  # the next five fire times
    assert 'href="/runs/abc123abc123"' in html and "succeeded" in html
    assert XSS not in html and "&lt;script&gt;" in html
    r = c.post("/schedules/nightly/pause", data={"csrf": csrf_of(c)})
    assert r.status_code == 303
    assert store.get("nightly").paused is True
    paused = c.get(r.headers["location"]).text
    assert "paused nightly" in paused and ">Resume</button>" in paused
    assert "none while paused" in paused
    before = time.time()
    r = c.post(
        "/schedules/nightly/resume",
        data={"csrf": csrf_of(c)},
        headers={"accept": "application/json"},
    )
    body = r.json()
    assert r.status_code == 200 and body["ok"] and body["message"].startswith("resumed nightly")
    again = store.get("nightly")
    assert again.paused is False
    # As the CLI does: ticks missed while paused do not run; it starts again from now.
    assert cron.parse_iso(again.start_after).timestamp() >= before - 1
    assert body["schedule"]["next_ticks"]
