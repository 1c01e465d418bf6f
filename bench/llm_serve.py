"""Benchmark a local LLM endpoint, batching on and off, against a bare Transformers ``generate`` loop.

    python bench/llm_serve.py                      # 3 rounds, 1/4/16 clients, 32 requests, 32 tokens
    python bench/llm_serve.py --rounds 5 --requests 64 --tokens 16

All three serve the same tiny model (built here, no download: a random
Llama-style causal LM, 2 layers, 64 dimensions, BPE tokenizer) on 127.0.0.1:

* ``batched``: the endpoint ``@serve(kind="llm")`` starts, ``max_batch_size=16``,
  ``batch_wait_ms=10`` (requests streamed, so time to first token is measured);
* ``unbatched``: the same endpoint with ``max_batch_size=1``;
* ``bare``: a stdlib HTTP server calling ``model.generate`` for one request at a
  time (greedy, the same prompts and ``max_new_tokens``); it does not stream, so
  its time to first token is its whole latency.

For each of 1, 4 and 16 concurrent clients, ``--requests`` requests are spread
over the clients; throughput is generated tokens (as each server counts them)
per wall-clock second. Rounds alternate between the servers; the table shows
medians over rounds. Everything runs on this machine, against 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BARE_SERVER = r"""
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

port, path = int(sys.argv[1]), sys.argv[2]
tok = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path).eval()
lock = threading.Lock()  # one request at a time, as a bare generate loop serves

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        ids = tok(body["prompt"], return_tensors="pt", add_special_tokens=False)
        with lock, torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=body["max_tokens"], do_sample=False,
                                 pad_token_id=tok.pad_token_id)
        new = out[0, ids["input_ids"].shape[1]:]
        eos = model.generation_config.eos_token_id
        n = len(new) - int(len(new) > 0 and int(new[-1]) == eos)
        data = json.dumps({"text": tok.decode(new, skip_special_tokens=True),
                           "usage": {"completion_tokens": n}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

print("ready", flush=True)
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

PROMPTS = [
    "Return a new dictionary with the keys of",
    "The default value of the argument is",
    "Open the file and return a stream",
    "Split the pathname into a pair",
    "Raise an error when the value",
    "Join two or more pathname components",
]


def _post(port: int, path: str, body: dict[str, Any], stream: bool) -> tuple[float, float, int]:
    """(latency s, time to first token s, completion tokens) of one request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    start = time.perf_counter()
    try:
        conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"{resp.status}: {resp.read()[:300]!r}")
        if not stream:
            reply = json.loads(resp.read())
            done = time.perf_counter() - start
            return done, done, int(reply["usage"]["completion_tokens"])
        # Chunks carry text, not token counts: the counts come from _count_tokens.
        first = None
        while True:
            line = resp.fp.readline()
            if not line:
                break
            if line.strip() == b"data: [DONE]":
                break
            if not line.startswith(b"data: "):
                continue  # the chunked encoding's size lines
            chunk = json.loads(line[6:])
            if first is None and chunk["choices"][0]["text"]:
                first = time.perf_counter() - start
        done = time.perf_counter() - start
        return done, first if first is not None else done, 0
    finally:
        conn.close()


def _run(port: int, kind: str, clients: int, requests: int, tokens: int) -> dict[str, float]:
    path = "/openai/v1/completions" if kind != "bare" else "/"
    stream = kind != "bare"

    def one(i: int) -> tuple[float, float, int]:
        body = {"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": tokens}
        if stream:
            body |= {"model": kind, "temperature": 0, "stream": True}
        return _post(port, path, body, stream)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - start
    lat = sorted(r[0] for r in results)
    ttft = sorted(r[1] for r in results)
    return {
        "wall": wall,
        "p50": statistics.median(lat),
        "p95": lat[min(len(lat) - 1, int(0.95 * len(lat)))],
        "ttft": statistics.median(ttft),
    }


def _count_tokens(port: int, kind: str, tokens: int) -> list[int]:
    """Completion tokens of each prompt (greedy, so the same in every round)."""
    out = []
    for prompt in PROMPTS:
        if kind == "bare":
            out.append(_post(port, "/", {"prompt": prompt, "max_tokens": tokens}, False)[2])
        else:
            body = {"model": kind, "prompt": prompt, "max_tokens": tokens, "temperature": 0}
            out.append(_post(port, "/openai/v1/completions", body, False)[2])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--clients", default="1,4,16")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="llm-bench-"))
    os.environ["WORKBENCH_HOME"] = str(tmp / "home")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from workbench_dsl.backends.deployer import DeploySpec, LLMOptions
    from workbench_dsl.backends.deployer._process import free_port
    from workbench_dsl.backends.deployer.local import LocalDeployer
    from workbench_dsl.paths import LocalRoot
    from workbench_dsl.tiny_llm import build_tiny_llm

    model = build_tiny_llm(tmp / "model", context_length=256)
    deployer = LocalDeployer(LocalRoot(tmp / "home"))
    bare_port = free_port(set())
    bare = subprocess.Popen(
        [sys.executable, "-c", BARE_SERVER, str(bare_port), str(model)],
        stdout=subprocess.PIPE,
        text=True,
    )
    ports: dict[str, int] = {}
    try:
        for kind, size in (("batched", 16), ("unbatched", 1)):
            spec = DeploySpec(
                endpoint=kind,
                model_uri=f"file://{model}",
                storage=str(model),
                flavor="transformers",
                kind="llm",
                llm=LLMOptions(max_batch_size=size, batch_wait_ms=10),
            )
            url = deployer.deploy(spec).url
            ports[kind] = int(url.split(":")[2].split("/")[0])
        assert bare.stdout is not None and bare.stdout.readline().strip() == "ready"
        ports["bare"] = bare_port
        counts = {k: _count_tokens(p, k, args.tokens) for k, p in ports.items()}
        per_request = {k: statistics.mean(v) for k, v in counts.items()}
        generated = {
            k: sum(v[i % len(PROMPTS)] for i in range(args.requests)) for k, v in counts.items()
        }
        table: dict[tuple[str, int], list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for clients in levels:
                for kind, port in ports.items():
                    r = _run(port, kind, clients, args.requests, args.tokens)
                    r["tps"] = generated[kind] / r["wall"]
                    table.setdefault((kind, clients), []).append(r)
        print(
            f"{args.requests} requests x {args.tokens} max tokens, medians of {args.rounds} "
            f"rounds; tokens per request: "
            + ", ".join(f"{k} {v:.1f}" for k, v in per_request.items())
        )
        print("| clients | server | tokens/s | p50 ms | p95 ms | TTFT p50 ms |")
        print("|---|---|---|---|---|---|")
        for clients in levels:
            for kind in ports:
                rs = table[(kind, clients)]
                med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                print(
                    f"| {clients} | {kind} | {med['tps']:.0f} | {med['p50'] * 1000:.0f} | "
                    f"{med['p95'] * 1000:.0f} | {med['ttft'] * 1000:.0f} |"
                )
        print()
        for clients in levels:
            tps = {k: statistics.median(r["tps"] for r in table[(k, clients)]) for k in ports}
            print(
                f"{clients} clients: batched/bare {tps['batched'] / tps['bare']:.2f}x, "
                f"batched/unbatched {tps['batched'] / tps['unbatched']:.2f}x tokens/s"
            )
    finally:
        deployer.stop_all()
        bare.terminate()
        bare.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
