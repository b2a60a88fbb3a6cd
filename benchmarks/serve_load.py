"""`kerasae-runtime serve` under load, side by side with a real Triton Inference Server.

    .venv/bin/python benchmarks/serve_load.py [--seconds 10] [--concurrency 1,16,64]
        [--triton-venv /tmp/triton-venv] [--baseline-runtime DIR] [--exports DIR] [--no-write]

Needs wrk and hey (`sudo apt-get install wrk hey`; it says so and stops where they are
missing). Trains a dense `ae` and a `conv_ae` (Fashion-MNIST, or digits where it is
missing; latent 16, 1 epoch: the weights do not change the cost) and exports them, or
reuses --exports. Every arm is a server subprocess on 127.0.0.1, driven by wrk on the same
two cores with one latent row per request (a 28x28 image back), --seconds per cell:

- `serve /v1`: kerasae's JSON API, dynamic batching, one worker; `--no-batching`;
  `--workers 2`; `serve /v2`: the same server over the Open Inference Protocol (JSON).
- `Triton`: tritonserver 2.51 (nvidia-pytriton's wheel) with its Python backend running
  onnxruntime on the same decoder.onnx, dynamic batcher 500 us, same /v2 body
  (benchmarks/triton_decoder.py, in --triton-venv made with Debian's /usr/bin/python3;
  skipped with a line saying why where it cannot start).
- `before`: --baseline-runtime, the kerasae_runtime of an earlier commit (its export/
  folder, e.g. from `git worktree add /tmp/base COMMIT`), /v1, to measure the change.

Each cell reports requests/s, p50/p99 (wrk, every response), responses by status and
socket errors, and the server's CPU ms per request (its process tree, from /proc). Then an
8x overload: c=512 against `--max-queue 64 --timeout-ms 200`, with hey for the p99 of the
accepted requests alone; and a bare onnxruntime loop on the conv decoder (batch 64, the
server's threads) for the rows/s ceiling.
"""

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import load_tools as lt  # noqa: E402
from benchmarks.report import machine, save_results, update_section  # noqa: E402
from benchmarks.serve_report import render  # noqa: E402

SECTION = "serve_load"
MODELS = {"dense": "ae", "conv": "conv_ae"}


def make_exports(folder, models=MODELS):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from kerasae.export.run import export_run
    from kerasae.runs.config import TrainConfig
    from kerasae.runs.training import train

    dataset = "fashion_mnist" if os.path.isdir("/usr/share/datasets/fashion-mnist") else "digits"
    out = {}
    for key, family in models.items():
        export_dir = os.path.join(folder, key, "export")
        if not os.path.exists(os.path.join(export_dir, "manifest.json")):
            config = TrainConfig(
                model=family, dataset=dataset, epochs=1, latent_dim=16, out=f"{folder}/{key}/run"
            )
            run_dir, _, _ = train(config, verbose=0)
            export_run(run_dir, out=export_dir, formats=("onnx",))
        out[key] = export_dir
    return out, dataset


def make_export(folder):
    """The dense decoder's export alone (benchmarks/gpu_suite.py's serve row)."""
    exports, _ = make_exports(folder, {"dense": MODELS["dense"]})
    return exports["dense"]


def measure(export_dir, seconds, latent_dim=None, levels=(1, 16, 64), flags=("--device", "cuda")):
    """Rows of serve (batching on, `flags`) over /v1 at each level: the GPU suite's serve
    row. latent_dim: read from the export (kept for the suite's call)."""
    proc, url = start_kerasae(export_dir, list(flags))
    try:
        rows = []
        for c in levels:
            r = cell(proc, url, bodies(export_dir)["/v1"], c, seconds)
            rows.append(
                {
                    "batching": "on",
                    "concurrency": c,
                    "requests_per_s": round(r["rps"]),
                    "p50_ms": round(r["p50_ms"], 2),
                    "p99_ms": round(r["p99_ms"], 1),
                    "failures": r["non_200"] + sum(r["socket_errors"].values()),
                }
            )
        return rows
    finally:
        lt.stop(proc)


def start_kerasae(export_dir, flags, runtime=None):
    port = lt.free_port()
    env = {**os.environ, "PYTHONPATH": runtime or os.path.join(ROOT, "export")}
    argv = [sys.executable, "-m", "kerasae_runtime", "serve", export_dir, "--port", str(port)]
    proc = subprocess.Popen(
        argv + flags, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    lt.wait_ready(url, proc, "/healthz")
    return proc, url


def start_triton(export_dir, venv):
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        raise RuntimeError(f"no Triton venv at {venv} (see benchmarks/triton_decoder.py)")
    port = lt.free_port()
    script = os.path.join(ROOT, "benchmarks", "triton_decoder.py")
    proc = subprocess.Popen(
        [python, script, export_dir, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # tritonserver and its stubs stop with the group
    )
    url = f"http://127.0.0.1:{port}"
    try:  # the server is ready before pytriton has bound the model
        lt.wait_ready(url, proc, "/v2/models/decoder/ready")
    except RuntimeError:
        _stop_group(proc)
        raise
    return proc, url


def _stop_group(proc):
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def bodies(export_dir):
    with open(os.path.join(export_dir, "manifest.json")) as f:
        info = json.load(f)["parts"]["decoder"]["inputs"][0]
    z = np.random.default_rng(0).standard_normal((1, info["shape"][1])).astype(np.float32)
    v1 = json.dumps({"z": z.tolist()}).encode()
    tensor = {"name": info["name"], "shape": list(z.shape), "datatype": "FP32"}
    v2 = json.dumps({"inputs": [{**tensor, "data": z.reshape(-1).tolist()}]}).encode()
    head = json.dumps(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": z.nbytes}}],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    infer = "/v2/models/decoder/infer"
    return {
        "/v1": ("/v1/decode", v1, None),
        "/v2": (infer, v2, None),
        "/v2 binary": (infer, head + z.tobytes(), {"Inference-Header-Content-Length": len(head)}),
    }


def cell(proc, url, request, c, seconds):
    path, body, headers = request
    lt.wrk(url + path, body, c, 1, headers=headers)  # warm-up: connections, first batches
    cpu0 = lt.tree_cpu_seconds(proc.pid)
    r = lt.wrk(url + path, body, c, seconds, headers=headers)
    cpu = lt.tree_cpu_seconds(proc.pid) - cpu0
    wall = r["duration_us"] / 1e6
    ok = int(r["codes"].get("200", 0))
    return {
        "concurrency": c,
        "requests": r["requests"],
        "rps": r["requests"] / wall,
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "codes": r["codes"],
        "socket_errors": {k: r[k] for k in ("connect", "read", "write", "timeout") if r[k]},
        "non_200": r["requests"] - ok,
        "cpu_ms_per_request": 1000 * cpu / max(r["requests"], 1),
    }


def run_arm(name, start, protocol, export_dir, levels, seconds):
    request = bodies(export_dir)[protocol]
    try:
        proc, url = start()
    except RuntimeError as exc:
        print(f"{name}: skipped ({exc})", flush=True)
        return [], str(exc)
    rows = []
    try:
        for c in levels:
            rows.append({"arm": name, **cell(proc, url, request, c, seconds)})
            print(rows[-1], flush=True)
    finally:
        _stop_group(proc) if name.startswith("Triton") else lt.stop(proc)
    return rows, None


def overload(export_dir, seconds, c=512, queue=64, timeout_ms=1000):
    flags = ["--max-queue", str(queue), "--timeout-ms", str(timeout_ms), "--drain-seconds", "0"]
    proc, url = start_kerasae(export_dir, flags)
    request = bodies(export_dir)["/v1"]
    try:
        row = cell(proc, url, request, c, seconds)
        by_status, wall = lt.hey(url + request[0], request[1], c, seconds)
    finally:
        lt.stop(proc)
    accepted = np.asarray(by_status.get("200", [0.0]))
    row.update(
        queue=queue,
        timeout_ms=timeout_ms,
        hey_codes={k: len(v) for k, v in by_status.items()},
        hey_accepted_p50_ms=float(np.percentile(accepted, 50)),
        hey_accepted_p99_ms=float(np.percentile(accepted, 99)),
        hey_rps=sum(len(v) for v in by_status.values()) / wall,
    )
    print(row, flush=True)
    return row


def bare_loop(export_dir, seconds=5.0, batch=64, threads=None, copies=1):
    """Rows/s of onnxruntime alone on the decoder, with the server's session options:
    `copies` loops side by side in threads (each its own session of `threads` threads)."""
    import threading

    sys.path.insert(0, os.path.join(ROOT, "export"))
    from kerasae_runtime import Decoder
    from kerasae_runtime import session as sessions

    sessions.configure(spinning=False)
    decoders = [Decoder.load(export_dir, device="cpu", threads=threads) for _ in range(copies)]
    z = np.random.default_rng(0).standard_normal((batch, decoders[0].input_shape[0]))
    z = z.astype(np.float32)
    rows = [0] * copies
    begin = time.perf_counter()

    def loop(k):
        while time.perf_counter() - begin < seconds:
            decoders[k].decode(z)
            rows[k] += batch

    workers = [threading.Thread(target=loop, args=(k,)) for k in range(copies)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(rows) / (time.perf_counter() - begin)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--exports", help="keep (or reuse) the trained exports in this folder")
    parser.add_argument("--triton-venv", default="/tmp/triton-venv")
    parser.add_argument("--baseline-runtime", help="an earlier commit's export/ folder")
    parser.add_argument("--models", default="dense,conv")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    lt.require("wrk"), lt.require("hey")
    levels = [int(c) for c in args.concurrency.split(",")]
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        exports, dataset = make_exports(args.exports or tmp)
        result = {"machine": machine(), "dataset": dataset, "seconds": args.seconds, "models": {}}
        for key in args.models.split(","):
            export_dir = exports[key]
            arms = [
                ("serve /v1", [], "/v1"),
                ("serve /v2", [], "/v2"),
                ("serve /v2 binary", [], "/v2 binary"),
                ("serve /v1 --no-batching", ["--no-batching"], "/v1"),
                ("serve /v1 --workers 2", ["--workers", "2"], "/v1"),
                (
                    "serve /v1 --instances 2 --threads 1",
                    ["--instances", "2", "--threads", "1"],
                    "/v1",
                ),
                (
                    "serve /v2 binary --instances 2 --threads 1",
                    ["--instances", "2", "--threads", "1"],
                    "/v2 binary",
                ),
                ("Triton", None, "/v2"),
                ("Triton binary", None, "/v2 binary"),
            ]
            if args.baseline_runtime:
                arms.insert(0, ("before", [], "/v1"))
            rows, skipped = [], {}
            for name, flags, protocol in arms:
                start = (
                    functools.partial(start_triton, export_dir, args.triton_venv)
                    if flags is None
                    else functools.partial(
                        start_kerasae,
                        export_dir,
                        flags,
                        args.baseline_runtime if name == "before" else None,
                    )
                )
                got, why = run_arm(name, start, protocol, export_dir, levels, args.seconds)
                rows += got
                if why:
                    skipped[name] = why
            model = {"rows": rows, "skipped": skipped}
            if key == "dense":
                model["overload"] = overload(export_dir, args.seconds)
            if key == "conv":  # the ceiling: the better of one 2-thread and two 1-thread loops
                model["bare"] = {
                    "1 session, default threads": bare_loop(export_dir),
                    "2 sessions side by side, 1 thread each": bare_loop(
                        export_dir, threads=1, copies=2
                    ),
                }
                model["bare_rows_per_s"] = max(model["bare"].values())
            result["models"][key] = model
    result["load"] = {"start": load_start, "end": os.getloadavg()}
    text = render(result)
    print(text)
    if not args.no_write:
        save_results(SECTION, result)
        update_section(SECTION, text)


if __name__ == "__main__":
    main()
