"""`kerasae-runtime serve` under load: POST /v1/decode with dynamic batching on and off.

    .venv/bin/python benchmarks/serve_load.py [--seconds 10] [--concurrency 1,8,64]
        [--export-dir DIR] [--no-write]

The README's venv has what it needs (the dev extra installs kerasae-runtime's serve and
test extras: starlette, uvicorn, prometheus-client, httpx).

Trains a `conv_ae` (Fashion-MNIST, or digits where it is missing; 1 epoch, latent 16: the
weights do not change the cost) and exports it to ONNX in a temporary folder, unless
--export-dir names an export. The server is a subprocess (PYTHONPATH=export), started
once with batching and once with --no-batching, on 127.0.0.1; this process is the client
(httpx.AsyncClient), driving one row per request at each --concurrency level (default 1,
8 and 64 clients) for --seconds each after a short warm-up. Requests/s, p50 and p99
latency and failures per cell go to benchmarks/results/serve_load.json and the
BENCHMARKS.md section.
"""

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.report import machine, markdown_table, save_results, update_section  # noqa: E402

SECTION = "serve_load"
CONCURRENCY = (1, 8, 64)
TARGET_SPEEDUP, TARGET_P99_MS = 3.0, 100.0


def make_export(out):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from kerasae.export.run import export_run
    from kerasae.runs.config import TrainConfig
    from kerasae.runs.training import train

    dataset = "fashion_mnist" if os.path.isdir("/usr/share/datasets/fashion-mnist") else "digits"
    run_dir, _, _ = train(
        TrainConfig(
            model="conv_ae", dataset=dataset, epochs=1, latent_dim=16, out=os.path.join(out, "run")
        ),
        verbose=0,
    )
    export_run(run_dir, out=os.path.join(out, "export"), formats=("onnx",))
    return os.path.join(out, "export"), dataset


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(export_dir, batching):
    import httpx

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "export")}
    argv = [sys.executable, "-m", "kerasae_runtime", "serve", export_dir, "--port", str(port)]
    proc = subprocess.Popen(
        argv + ([] if batching else ["--no-batching"]),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the server did not start: {proc.stderr.read().decode()[-2000:]}")


async def drive(url, concurrency, seconds, latent_dim):
    """Closed loop: each of `concurrency` clients sends its next request when the last one
    is answered. Returns (latencies of successes, failures, wall seconds)."""
    import httpx

    rng = np.random.default_rng(concurrency)
    bodies = [{"z": rng.standard_normal((1, latent_dim)).tolist()} for _ in range(64)]
    latencies, failures, kinds = [], 0, {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def client_loop(k, stop):
            nonlocal failures
            i = k
            while time.perf_counter() < stop:
                start = time.perf_counter()
                try:
                    r = await client.post("/v1/decode", json=bodies[i % len(bodies)])
                    ok = r.status_code == 200 and len(r.json()["x_hat"]) == 1
                    kind = f"HTTP {r.status_code}"
                except httpx.HTTPError as exc:
                    ok, kind = False, type(exc).__name__
                if ok:
                    latencies.append(time.perf_counter() - start)
                else:
                    failures += 1
                    kinds[kind] = kinds.get(kind, 0) + 1
                i += concurrency

        warm = time.perf_counter() + 1.0
        await asyncio.gather(*(client_loop(k, warm) for k in range(concurrency)))
        latencies.clear()
        failures = 0
        kinds.clear()
        begin = time.perf_counter()
        await asyncio.gather(*(client_loop(k, begin + seconds) for k in range(concurrency)))
        return latencies, failures, kinds, time.perf_counter() - begin


def measure(export_dir, seconds, latent_dim, levels=CONCURRENCY):
    rows = []
    for batching in (True, False):
        proc, url = start_server(export_dir, batching)
        try:
            for c in levels:
                lat, failures, kinds, wall = asyncio.run(drive(url, c, seconds, latent_dim))
                ms = np.asarray(lat) * 1000
                rows.append(
                    {
                        "batching": batching,
                        "concurrency": c,
                        "requests": len(lat),
                        "requests_per_s": len(lat) / wall,
                        "p50_ms": float(np.percentile(ms, 50)),
                        "p99_ms": float(np.percentile(ms, 99)),
                        "failures": failures,
                        "failure_kinds": kinds,
                    }
                )
                print(rows[-1], flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return rows


def _failures(row):
    kinds = ", ".join(f"{k}: {v}" for k, v in row.get("failure_kinds", {}).items())
    return f"{row['failures']} ({kinds})" if row["failures"] else "0"


def render(result):
    rows = result["rows"]
    table = markdown_table(
        ["batching", "concurrency", "requests", "requests/s", "p50 ms", "p99 ms", "failures"],
        [
            [
                "on" if r["batching"] else "off (--no-batching)",
                r["concurrency"],
                r["requests"],
                f"{r['requests_per_s']:,.0f}",
                f"{r['p50_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                _failures(r),
            ]
            for r in rows
        ],
    )
    cell = {(r["batching"], r["concurrency"]): r for r in rows}
    top = max(r["concurrency"] for r in rows)  # the verdict is read at the highest level
    on, off = cell[(True, top)], cell[(False, top)]
    speedup = on["requests_per_s"] / off["requests_per_s"]
    lost = sum(r["failures"] for r in rows)
    met = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    verdict = (
        f"At concurrency {top}, batching gives **{speedup:.2f}x** the requests/s of "
        f"batching off (target >= {TARGET_SPEEDUP:.0f}x: {met(speedup >= TARGET_SPEEDUP)})"
        f", p99 {on['p99_ms']:.1f} ms (target < {TARGET_P99_MS:.0f} ms: "
        f"{met(on['p99_ms'] < TARGET_P99_MS)}); {lost} requests failed or were lost "
        f"(target 0: {met(lost == 0)})."
    )
    return f"""## Serving: `kerasae-runtime serve`

POST /v1/decode, one latent row per JSON request (the reply is a 28x28x1 image as JSON), to
a `conv_ae` (latent 16, {result["dataset"]}, 1 epoch: weights do not change the cost)
exported to ONNX, served by `kerasae-runtime serve` with its defaults (--max-batch 256,
--max-delay-ms 5, one worker, onnxruntime's default threads, spinning off) and once with
`--no-batching`. The client is a closed loop of N httpx.AsyncClient tasks in another
process on the same machine, {result["seconds"]:.0f} s per cell after 1 s of warm-up; it
shares the 2 cores with the server, so both rows pay for it alike. Machine: {result["machine"]};
load average {result["load_start"]:.2f} when the script started, {result["load_before"]}
(1, 5, 15 min) before the first cell and {result["load_after"]} after the last
({result["note"]}).

{table}

{verdict}

Reproduce: `.venv/bin/python benchmarks/serve_load.py` (rows in
`benchmarks/results/serve_load.json`).
"""


def _load():
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--export-dir", help="an existing export (skips the training)")
    parser.add_argument("--keep", help="train+export into this folder and keep it")
    parser.add_argument(
        "--concurrency",
        type=lambda text: tuple(int(c) for c in text.split(",")),
        default=CONCURRENCY,
        help="comma-separated numbers of concurrent clients (default 1,8,64)",
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]  # before this script adds its own load
    with tempfile.TemporaryDirectory() as tmp:
        export_dir, dataset = (
            (args.export_dir, "an existing export")
            if args.export_dir
            else make_export(args.keep or tmp)
        )
        import json

        with open(os.path.join(export_dir, "manifest.json")) as f:
            latent_dim = json.load(f)["model"]["latent_dim"]
        load_before = _load()
        rows = measure(export_dir, args.seconds, latent_dim, args.concurrency)
    load_after = _load()
    busy = load_start > 0.5
    result = {
        "machine": machine(),
        "dataset": dataset,
        "seconds": args.seconds,
        "load_start": load_start,
        "load_before": load_before,
        "load_after": load_after,
        "note": "other jobs were running on the machine" if busy else "otherwise idle",
        "rows": rows,
    }
    text = render(result)
    print(text)
    if not args.no_write:
        save_results(SECTION, result)
        update_section(SECTION, text)


if __name__ == "__main__":
    main()
