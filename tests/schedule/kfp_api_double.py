"""A stand-in for the KFP API server on 127.0.0.1, built from KFP's own v2beta1 swagger.

Every request is checked against the vendored definition (kfp_v2beta1/, see SOURCE.md):
the path and method exist, each query parameter is declared for that operation and has
its type or enum, ``filter`` parses as a ``v2beta1Filter``, and the body matches the
operation's schema with the server's unmarshalling rules (unknown fields are refused,
int64 may be a number or a string, enums a name or a number). A request that breaks
the definition answers 400 and is kept in ``violations`` (the fixture fails the test).

With ``stateful=True`` it keeps experiments, recurring runs and runs, and answers like
KFP 2.17's API server: responses are marshalled from the operation's response schema
(proto names, fields at their default left out, int64 as strings), lists are filtered,
sorted and paged with an opaque ``next_page_token`` (page size 20 by default, 200 at
most, a token must match the filter it was made with), and ``advance(t)`` plays the
ScheduledWorkflow controller: ticks after ``max(last fired, start_time or creation)``,
catch-up or only the latest, at most ``max_concurrency`` runs in flight. Deleting a
recurring run stops its runs in flight (``killed``) unless ``propagation_policy=ORPHAN``
on a 2.16+ server (``version``). ``routes`` override any operation with a canned answer.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema

SWAGGER = json.loads(
    (Path(__file__).parent / "kfp_v2beta1" / "kfp_api_single_file.swagger.json").read_text()
)
Handler = Callable[[str, str, dict[str, list[str]], Any], tuple[int, Any]]
IN_FLIGHT = {"RUNTIME_STATE_UNSPECIFIED", "PENDING", "RUNNING", "CANCELING", "PAUSED"}
RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _status(e: ApiError) -> dict[str, Any]:
    """An error as grpc-gateway v2 writes it: a google.rpc.Status."""
    return {"code": e.code, "message": e.message, "details": []}


def _bad(message: str) -> ApiError:
    return ApiError(400, 3, message)  # codes.InvalidArgument


# -- the definition, read with the server's unmarshalling rules ----------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _input_schema(s: Any) -> Any:
    """A swagger schema as protojson reads it (jsonschema draft 4)."""
    if not isinstance(s, dict):
        return s
    if "$ref" in s:
        return {"$ref": s["$ref"]}
    t = s.get("type")
    if t == "string" and s.get("format") in ("int64", "uint64"):
        return {"anyOf": [{"type": "string", "pattern": r"^-?\d+$"}, {"type": "integer"}]}
    if t == "integer":
        return {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^-?\d+$"}]}
    if t == "string" and "enum" in s:
        return {"anyOf": [{"enum": s["enum"]}, {"type": "integer", "minimum": 0}]}
    if t == "string" and s.get("format") == "date-time":
        return {"type": "string", "pattern": RFC3339}
    if t == "array":
        return {"type": "array", "items": _input_schema(s.get("items", {}))}
    if t == "object" and "properties" in s:
        props: dict[str, Any] = {}
        for k, v in s["properties"].items():
            props[k] = props[_camel(k)] = _input_schema(v)
        return {"type": "object", "properties": props, "additionalProperties": False}
    return {k: v for k, v in s.items() if k in ("type", "additionalProperties")}


DEFS = {k: _input_schema(v) for k, v in SWAGGER["definitions"].items()}


def _validate(instance: Any, schema: dict[str, Any], what: str) -> None:
    root = {"definitions": DEFS, **_input_schema(schema)}
    errors = list(jsonschema.Draft4Validator(root).iter_errors(instance))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        raise _bad(f"{what}: {where}: {e.message}")


def _ref(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SWAGGER["definitions"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


class Operation:
    def __init__(self, method: str, template: str, op: dict[str, Any]) -> None:
        self.method, self.template, self.op = method, template, op
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/:]+)", re.escape(template))
        self.regex = re.compile(pattern + "$")
        self.params = {p["name"]: p for p in op.get("parameters", [])}
        self.response = op["responses"]["200"].get("schema", {})

    def check(self, query: dict[str, list[str]], body: Any) -> None:
        for name, values in query.items():
            p = self.params.get(name)
            if p is None or p["in"] != "query":
                raise _bad(f"{self.method} {self.template}: undeclared query parameter {name!r}")
            for v in values:
                if p.get("type") == "integer" and not re.fullmatch(r"-?\d+", v):
                    raise _bad(f"query parameter {name}={v!r} is not an integer")
                if "enum" in p and v not in p["enum"]:
                    raise _bad(f"query parameter {name}={v!r} not one of {p['enum']}")
        if "filter" in query:
            try:
                flt = json.loads(query["filter"][0])
            except ValueError:
                raise _bad(f"filter is not JSON: {query['filter'][0]!r}") from None
            _validate(flt, {"$ref": "#/definitions/v2beta1Filter"}, "filter")
        body_param = next((p for p in self.params.values() if p["in"] == "body"), None)
        if body_param is None:
            if body not in (None, {}):
                raise _bad(f"{self.method} {self.template} takes no body")
            return
        if body is None:
            raise _bad(f"{self.method} {self.template}: a body is required")
        _validate(body, body_param["schema"], f"{self.method} {self.template} body")


OPERATIONS = [
    Operation(m.upper(), path, op)
    for path, ops in SWAGGER["paths"].items()
    for m, op in ops.items()
]


def find_operation(method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    for op in OPERATIONS:
        m = op.regex.match(path)
        if op.method == method and m:
            return op, m.groupdict()
    return None


def marshal(value: Any, schema: dict[str, Any]) -> Any:
    """protojson with EmitUnpopulated false and proto names, driven by the swagger schema."""
    s = _ref(schema)
    t = s.get("type")
    if t == "object" and "properties" in s:
        out = {}
        for k, v in value.items():
            if k not in s["properties"]:
                raise KeyError(f"{k!r} is not a field of this message")
            sub = _ref(s["properties"][k])
            if v is None or (sub.get("type") != "object" and _is_default(v, sub)):
                continue
            out[k] = marshal(v, s["properties"][k])
        return out
    if t == "array":
        return [marshal(v, s.get("items", {})) for v in value]
    if t == "string" and s.get("format") in ("int64", "uint64"):
        return str(int(value))
    if t == "string" and s.get("format") == "date-time" and isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return copy.deepcopy(value)


def _is_default(v: Any, s: dict[str, Any]) -> bool:
    if "enum" in s:
        return bool(v == s["enum"][0])
    return v is not True and v in (False, 0, "", [], {})


# -- the server's list semantics (list_request_util.go, filter/filter.go) ------------------

RUN_FIELDS = {
    "run_id",
    "display_name",
    "created_at",
    "finished_at",
    "description",
    "scheduled_at",
    "storage_state",
    "namespace",
    "experiment_id",
    "state",
    "recurring_run_id",
}
JOB_FIELDS = {"recurring_run_id", "display_name", "created_at", "updated_at", "description"}
EXPERIMENT_FIELDS = {
    "experiment_id",
    "display_name",
    "created_at",
    "description",
    "namespace",
    "storage_state",
}
OPS = [
    "OPERATION_UNSPECIFIED",
    "EQUALS",
    "NOT_EQUALS",
    "GREATER_THAN",
    "GREATER_THAN_EQUALS",
    "LESS_THAN",
    "LESS_THAN_EQUALS",
    "IN",
    "IS_SUBSTRING",
]


def _predicate(p: dict[str, Any], fields: set[str]) -> Callable[[dict[str, Any]], bool]:
    p = {re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), k): v for k, v in p.items()}
    op = p.get("operation")
    op = OPS[op] if isinstance(op, int) else op
    key = p.get("key", "")
    if not key:
        raise _bad("Predicate key cannot be empty")
    if key not in fields:
        raise _bad(f"no support for filtering on unrecognized field {key!r}")
    scalar = next((p[k] for k in ("string_value", "int_value", "long_value") if k in p), None)
    many = next(
        (p[k].get("values", []) for k in ("string_values", "int_values", "long_values") if k in p),
        None,
    )
    if op == "IN" and many is None:
        raise _bad("cannot use IN operator with scalar type")
    if op in ("EQUALS", "NOT_EQUALS") and scalar is None:
        raise _bad(f"cannot use scalar operator {op} on array type")

    def get(o: dict[str, Any]) -> str:
        return str(o.get(key) if o.get(key) is not None else "")

    if op == "EQUALS":
        return lambda o: get(o) == str(scalar)
    if op == "NOT_EQUALS":
        return lambda o: get(o) != str(scalar)
    if op == "IN":
        vals = {str(v) for v in many or []}
        return lambda o: get(o) in vals
    if op == "IS_SUBSTRING":
        return lambda o: str(scalar) in get(o)
    raise _bad(f"invalid predicate operation: {op}")


def list_page(
    items: list[dict[str, Any]],
    query: dict[str, list[str]],
    key: str,
    fields: set[str],
) -> tuple[list[dict[str, Any]], int, str]:
    q = {k: v[0] for k, v in query.items()}
    size = int(q.get("page_size") or 0)
    if size < 0:
        raise _bad(f"The page size should be greater than 0. Got {size}")
    size = min(size or 20, 200)
    flt, sort = q.get("filter", ""), q.get("sort_by", "")
    offset = 0
    if q.get("page_token"):
        try:
            tok = json.loads(base64.b64decode(q["page_token"]))
        except ValueError:
            raise _bad("Invalid page token") from None
        if (flt or sort) and (flt, sort) != (tok["filter"] or flt, tok["sort"] or sort):
            raise _bad("page token does not match the supplied sort by and/or filtering criteria")
        flt, sort, offset = tok["filter"], tok["sort"], tok["offset"]
    preds = [_predicate(p, fields) for p in (json.loads(flt).get("predicates", []) if flt else [])]
    chosen = [o for o in items if all(pr(o) for pr in preds)]
    by, _, order = sort.partition(" ")
    by = by or key
    if by not in fields:
        raise _bad(f"Cannot sort on field {by}")
    chosen.sort(key=lambda o: (str(o.get(by) or ""), o[key]), reverse=order.lower() == "desc")
    page = chosen[offset : offset + size]
    nxt = ""
    if offset + size < len(chosen):
        tok = {"filter": flt, "sort": sort, "offset": offset + size}
        nxt = base64.b64encode(json.dumps(tok).encode()).decode()
    return page, len(chosen), nxt


# -- the double ------------------------------------------------------------------------------


class KfpApiDouble:
    """The KFP API on 127.0.0.1; ``routes`` {(METHOD, path): handler or (status, body)}
    override operations; unrouted ones answer from state (``stateful``) or 404."""

    def __init__(self, *, stateful: bool = False, version: str = "2.17.0") -> None:
        self.requests: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.routes: dict[tuple[str, str], Any] = {
            ("GET", "/apis/v2beta1/healthz"): (200, {"multi_user": False}),
        }
        if stateful:
            del self.routes[("GET", "/apis/v2beta1/healthz")]
        self.stateful = stateful
        self.version = version
        self.now = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
        self.experiments: dict[str, dict[str, Any]] = {}
        self.recurring_runs: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.last_fired: dict[str, datetime] = {}
        self.killed: list[str] = []
        self.lock = threading.RLock()
        double = self

        class H(BaseHTTPRequestHandler):
            def date_time_string(self, timestamp: float | None = None) -> str:
                from email.utils import format_datetime

                return format_datetime(double.now, usegmt=True)

            def _handle(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                body = json.loads(raw) if raw else None
                parts = urlsplit(self.path)
                query = parse_qs(parts.query, keep_blank_values=True)
                double.requests.append(
                    {
                        "method": method,
                        "path": parts.path,
                        "query": {k: v[0] for k, v in query.items()},
                        "body": body,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                    }
                )
                status, out = double.answer(method, parts.path, query, body)
                data = json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # -- HTTP ----------------------------------------------------------------------------

    def answer(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        found = find_operation(method, path)
        try:
            if found is None:
                raise ApiError(404, 5, f"no operation {method} {path} in the v2beta1 API")
            found[0].check(query, body)
        except ApiError as e:
            self.violations.append(e.message)
            return e.status, _status(e)
        route = self.routes.get((method, path))
        if route is not None:
            return route(method, path, query, body) if callable(route) else route
        if not self.stateful:
            return 404, {"code": 5, "message": f"Not Found: no route {method} {path}"}
        if path == "/apis/v2beta1/healthz":
            return 200, {
                "commit_sha": "unknown",
                "tag_name": self.version,
                "multi_user": False,
                "pipeline_store": "database",
            }
        assert found is not None
        op, args = found
        try:
            with self.lock:
                out = self._serve(op, args, query, body)
        except ApiError as e:
            return e.status, _status(e)
        return 200, marshal(out, op.response) if op.response else {}

    def calls(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in self.requests]

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls() if c[0] != "GET"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- the server's behaviour ----------------------------------------------------------

    def _serve(
        self, op: Operation, args: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> Any:
        key = (op.method, op.template)
        q = {k: v[0] for k, v in query.items()}
        if key == ("GET", "/apis/v2beta1/experiments"):
            page, total, nxt = list_page(
                list(self.experiments.values()), query, "experiment_id", EXPERIMENT_FIELDS
            )
            return {"experiments": page, "total_size": total, "next_page_token": nxt}
        if key == ("POST", "/apis/v2beta1/experiments"):
            return self.add_experiment(body.get("display_name", ""))
        if key == ("GET", "/apis/v2beta1/recurringruns"):
            items = [
                r
                for r in self.recurring_runs.values()
                if not q.get("experiment_id") or r["experiment_id"] == q["experiment_id"]
            ]
            page, total, nxt = list_page(items, query, "recurring_run_id", JOB_FIELDS)
            return {"recurringRuns": page, "total_size": total, "next_page_token": nxt}
        if key == ("POST", "/apis/v2beta1/recurringruns"):
            return self._create_recurring_run(_snake(body))
        if key == ("GET", "/apis/v2beta1/recurringruns/{recurring_run_id}"):
            return self._job(args["recurring_run_id"])
        if key[1].endswith(":enable") or key[1].endswith(":disable"):
            rr = self._job(args["recurring_run_id"])
            mode = "ENABLE" if key[1].endswith(":enable") else "DISABLE"
            if rr["mode"] != mode:  # job_store.go ChangeJobMode: only a change is written
                rr["mode"], rr["updated_at"] = mode, self.now
                rr["status"] = "ENABLED" if mode == "ENABLE" else "DISABLED"
            return {}
        if key == ("DELETE", "/apis/v2beta1/recurringruns/{recurring_run_id}"):
            rid = args["recurring_run_id"]
            self._job(rid)
            policy = q.get("propagation_policy", "")
            if _version(self.version) < (2, 16, 0):
                policy = ""  # before #12574 grpc-gateway drops the unknown parameter
            if policy != "ORPHAN":  # the workflows it owns are garbage-collected
                for r in self.runs.values():
                    if r.get("recurring_run_id") == rid and r["state"] in IN_FLIGHT:
                        r["state"] = "CANCELED"
                        self.killed.append(r["run_id"])
            del self.recurring_runs[rid]
            return {}
        if key == ("GET", "/apis/v2beta1/runs"):
            items = [
                r
                for r in self.runs.values()
                if not q.get("experiment_id") or r["experiment_id"] == q["experiment_id"]
            ]
            page, total, nxt = list_page(items, query, "run_id", RUN_FIELDS)
            return {"runs": page, "total_size": total, "next_page_token": nxt}
        if key == ("POST", "/apis/v2beta1/runs"):
            b = _snake(body)
            run = {
                **{
                    k: v
                    for k, v in b.items()
                    if k in ("display_name", "pipeline_spec", "runtime_config")
                },
                "run_id": str(uuid.uuid4()),
                "experiment_id": b.get("experiment_id") or self.default_experiment(),
                "state": "PENDING",
                "storage_state": "AVAILABLE",
                "created_at": self.now,
            }
            self.runs[run["run_id"]] = run
            return run
        raise ApiError(501, 12, f"the double does not serve {op.method} {op.template}")

    def add_experiment(self, name: str) -> dict[str, Any]:
        for e in self.experiments.values():
            if e["display_name"] == name:
                raise ApiError(409, 6, f"Experiment {name!r} already exists")
        e = {
            "experiment_id": str(uuid.uuid4()),
            "display_name": name,
            "created_at": self.now,
            "storage_state": "AVAILABLE",
        }
        self.experiments[e["experiment_id"]] = e
        return e

    def default_experiment(self) -> str:
        for e in self.experiments.values():
            if e["display_name"] == "Default":
                return str(e["experiment_id"])
        return str(self.add_experiment("Default")["experiment_id"])

    def _job(self, rid: str) -> dict[str, Any]:
        rr = self.recurring_runs.get(rid)
        if rr is None:
            raise ApiError(404, 5, f"Job {rid} not found")
        return rr

    def _create_recurring_run(self, b: dict[str, Any]) -> dict[str, Any]:
        # api_converter.go toModelJob and job_server.go validation
        if not b.get("display_name"):
            raise _bad("Recurring run's name cannot be empty")
        mc = int(b.get("max_concurrency") or 0)
        if not 1 <= mc <= 10:
            raise _bad(
                f"Max concurrency of a recurring run must be at least 1 and at most 10. Received {mc}"
            )
        mode = b.get("mode") or "MODE_UNSPECIFIED"
        if mode not in ("ENABLE", "DISABLE", 1, 2):
            raise _bad(f"Recurring run mode {mode} is not supported")
        cs = (b.get("trigger") or {}).get("cron_schedule") or {}
        if not cs.get("cron") or _next(cs["cron"], self.now) is None:
            raise _bad(f"Schedule cron is not a supported format: {cs.get('cron')!r}")
        if b.get("experiment_id") and b["experiment_id"] not in self.experiments:
            raise ApiError(404, 5, f"Experiment {b['experiment_id']} not found")
        rid = str(uuid.uuid4())
        rr = {
            **b,
            "recurring_run_id": rid,
            "experiment_id": b.get("experiment_id") or self.default_experiment(),
            "max_concurrency": mc,
            "mode": "ENABLE" if mode in ("ENABLE", 1) else "DISABLE",
            "status": "ENABLED" if mode in ("ENABLE", 1) else "DISABLED",
            "created_at": self.now,
            "updated_at": self.now,
        }
        self.recurring_runs[rid] = rr
        return rr

    # -- the ScheduledWorkflow controller (backend/src/crd/controller/scheduledworkflow) ---

    def _due(self, rr: dict[str, Any]) -> datetime | None:
        cs = rr["trigger"]["cron_schedule"]
        start = _parse(cs.get("start_time"))
        last = self.last_fired.get(rr["recurring_run_id"]) or start or rr["created_at"]
        if start is not None and start > last:
            last = start
        nxt = _next(cs["cron"], last)
        if nxt is None:
            return None
        if rr.get("no_catchup"):  # GetNextScheduledTimeNoCatchup: the latest due one
            while True:
                after = _next(cs["cron"], nxt)
                if after is None or after > self.now:
                    break
                nxt = after
        return nxt

    def _active(self, rid: str) -> int:
        return sum(
            1
            for r in self.runs.values()
            if r.get("recurring_run_id") == rid and r["state"] in IN_FLIGHT
        )

    def advance(self, to: datetime) -> list[dict[str, Any]]:
        """Move the clock to ``to``, firing ticks as the controller would; the runs started."""
        started: list[dict[str, Any]] = []
        with self.lock:
            blocked: set[str] = set()
            while True:
                due = [
                    (t, rid)
                    for rid, rr in self.recurring_runs.items()
                    if rr["mode"] == "ENABLE" and rid not in blocked
                    for t in [self._due(rr)]
                    if t is not None and t <= to
                ]
                if not due:
                    break
                t, rid = min(due)
                self.now = max(self.now, t)
                rr = self.recurring_runs[rid]
                if self._active(rid) >= int(rr["max_concurrency"]):
                    blocked.add(rid)
                    continue
                started.append(self.fire(rid, t))
            self.now = max(self.now, to)
        return started

    def fire(self, rid: str, tick: datetime) -> dict[str, Any]:
        rr = self.recurring_runs[rid]
        run = {
            "run_id": str(uuid.uuid4()),
            "display_name": f"{rr['display_name']}-{int(tick.timestamp())}",
            "experiment_id": rr["experiment_id"],
            "recurring_run_id": rid,
            "state": "RUNNING",
            "storage_state": "AVAILABLE",
            "created_at": self.now,
            "scheduled_at": tick,
        }
        self.runs[run["run_id"]] = run
        self.last_fired[rid] = tick
        return run

    def add_runs(self, rid: str, n: int, state: str = "SUCCEEDED") -> list[str]:
        """``n`` past runs of ``rid`` (history, not ticks), in ``state``."""
        ids = []
        rr = self.recurring_runs[rid]
        for i in range(n):
            run = {
                "run_id": str(uuid.uuid4()),
                "display_name": f"{rr['display_name']}-old-{i}",
                "experiment_id": rr["experiment_id"],
                "recurring_run_id": rid,
                "state": state,
                "storage_state": "AVAILABLE",
                "created_at": self.now,
                "scheduled_at": self.now,
            }
            self.runs[run["run_id"]] = run
            ids.append(run["run_id"])
        return ids

    def finish(self, run_id: str, state: str = "SUCCEEDED") -> None:
        self.runs[run_id]["state"] = state

    def runs_of(self, name: str) -> list[dict[str, Any]]:
        """Runs started by any recurring run named ``name`` (alive or deleted), by tick."""
        ids = {rid for rid, rr in self.recurring_runs.items() if rr["display_name"] == name}
        return sorted(
            (
                r
                for r in self.runs.values()
                if r.get("recurring_run_id") in ids or name in r["display_name"]
            ),
            key=lambda r: r.get("scheduled_at") or self.now,
        )


def _snake(body: Any) -> dict[str, Any]:
    """protojson accepts lowerCamel names too; the double keeps proto names."""
    if not isinstance(body, dict):
        return {}
    out = {}
    for k, v in body.items():
        sk = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), k)
        free = sk in ("pipeline_spec", "parameters", "plugins_input")
        out[sk] = v if free or not isinstance(v, dict) else _snake(v)
    return out


def _version(tag: str) -> tuple[int, ...]:
    m = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", tag)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else (0, 0, 0)


def _parse(s: Any) -> datetime | None:
    if isinstance(s, datetime):
        return s
    if not s:
        return None
    return datetime.fromisoformat(str(s).replace("Z", "+00:00")).astimezone(UTC)


def _next(kfp_cron: str, after: datetime) -> datetime | None:
    """robfig/cron Next (seconds first), in UTC: the controller's CRON_SCHEDULE_TIMEZONE."""
    from croniter import croniter

    expr = kfp_cron.replace("?", "*")
    try:
        if expr.startswith("@"):
            it = croniter(expr, after)
        else:
            if len(expr.split()) != 6:
                return None
            it = croniter(expr, after, second_at_beginning=True)
        nxt: datetime = it.get_next(datetime)
    except (ValueError, KeyError):
        return None
    return nxt.astimezone(UTC)


# -- canned bodies for the routed (non-stateful) tests --------------------------------------

EXPERIMENT = {"experiment_id": "exp-1", "display_name": "Default", "namespace": ""}


def experiments(found: bool = True) -> tuple[int, Any]:
    return 200, ({"experiments": [EXPERIMENT], "total_size": 1} if found else {})
