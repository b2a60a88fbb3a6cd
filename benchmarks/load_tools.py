"""Load generators and server bookkeeping for benchmarks/serve_load.py.

wrk (a C load generator: `apt-get install wrk`) drives every cell: a closed loop of C
connections on 2 threads, one POST per request, with a Lua script that counts responses by
status and prints wrk's own latency percentiles (over every response). hey (`apt-get
install hey`) is used where latencies are needed by status (the overload cell: the p99 of
the accepted requests alone): its `-o csv` writes one line per response with its status.
A server's CPU time is read from /proc for its whole process tree (uvicorn's workers,
Triton's backend stubs), before and after each cell.
"""

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(headers)s
local f = io.open("%(body)s", "rb"); wrk.body = f:read("*a"); f:close()
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) codes = {} end
function response(status, headers, body) codes[status] = (codes[status] or 0) + 1 end
function done(summary, latency, requests)
  local agg = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("codes")) do agg[tostring(k)] = (agg[tostring(k)] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(agg) do table.insert(parts, string.format('"%%s": %%d', k, v)) end
  io.write(string.format('RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, ' ..
    '"p99_us": %%d, "connect": %%d, "read": %%d, "write": %%d, "timeout": %%d, ' ..
    '"codes": {%%s}}\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, table.concat(parts, ", ")))
end
"""


def require(tool):
    """The tool's path, or SystemExit naming the package to install."""
    path = shutil.which(tool)
    if path is None:
        raise SystemExit(
            f"serve_load: {tool} is not installed; install it with "
            f"`sudo apt-get install {tool}` (Debian package {tool!r}) and run again"
        )
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, path="/v2/health/ready", seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + path, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url}{path} was not ready within {seconds} s")


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _children():
    """{pid: parent pid} of every process."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                out[int(name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                pass
    return out


def tree_cpu_seconds(root):
    """User + system CPU seconds of `root` and every live descendant (children that exited
    count in their parent's cutime/cstime, which are added too)."""
    parents = _children()
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == pid and p not in tree]
        tree.update(kids)
        frontier.extend(kids)
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in tree:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15]) / tick  # utime stime cutime cstime
        except (OSError, ValueError):
            pass
    return total


def wrk(url, body, connections, seconds, timeout_s=10, headers=None):
    """One wrk run: a dict with requests, duration, p50/p99 (all responses), codes and
    socket errors by kind."""
    exe = require("wrk")
    with tempfile.TemporaryDirectory() as tmp:
        body_path, script = os.path.join(tmp, "body.json"), os.path.join(tmp, "post.lua")
        with open(body_path, "wb") as f:
            f.write(body)
        with open(script, "w") as f:
            extra = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items())
            f.write(LUA % {"body": body_path, "headers": extra})
        threads = min(2, connections)
        argv = [exe, f"-t{threads}", f"-c{connections}", f"-d{seconds}s"]
        argv += [f"--timeout={timeout_s}s", "-s", script, url]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {out.stdout[-500:]} {out.stderr[-500:]}")
    return json.loads(line[len("RESULT ") :])


def hey(url, body, connections, seconds):
    """One hey run with per-response CSV: (latencies in ms by status code, wall seconds)."""
    exe = require("hey")
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        f.write(body)
        f.flush()
        argv = [exe, "-z", f"{seconds}s", "-c", str(connections), "-m", "POST"]
        argv += ["-T", "application/json", "-D", f.name, "-o", "csv", url]
        begin = time.perf_counter()
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
        wall = time.perf_counter() - begin
    by_status = {}
    for row in csv.DictReader(io.StringIO(out.stdout)):
        by_status.setdefault(row["status-code"], []).append(float(row["response-time"]) * 1000)
    return by_status, wall
