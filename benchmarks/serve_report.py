"""The BENCHMARKS.md section of benchmarks/serve_load.py: the side-by-side table per
decoder and the issue's targets, each stated as met or missed with the figures."""

from benchmarks.report import markdown_table

TARGET_VS_TRITON, TARGET_CPU_CUT, TARGET_VS_BARE = 1.5, 0.5, 0.9


def _codes(row):
    other = {k: v for k, v in row["codes"].items() if k != "200"}
    text = ", ".join(f"{v} x {k}" for k, v in sorted(other.items())) or "0"
    sockets = ", ".join(f"{v} {k}" for k, v in row.get("socket_errors", {}).items())
    return text + (f"; socket: {sockets}" if sockets else "")


def table(rows):
    return markdown_table(
        ["server", "c", "requests/s", "p50 ms", "p99 ms", "non-200", "server CPU ms/request"],
        [
            [
                r["arm"],
                r["concurrency"],
                f"{r['rps']:,.0f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.1f}",
                _codes(r),
                f"{r['cpu_ms_per_request']:.3f}",
            ]
            for r in rows
        ],
    )


def _at(rows, arm, c):
    return next((r for r in rows if r["arm"] == arm and r["concurrency"] == c), None)


def _met(ok):
    return "met" if ok else "**missed**"


def targets(result):
    lines = []
    dense = result["models"].get("dense")
    if dense:
        rows, top = dense["rows"], max(r["concurrency"] for r in dense["rows"])
        for arm, peer in (
            ("serve /v1", "Triton"),
            ("serve /v2", "Triton"),
            ("serve /v2 binary", "Triton binary"),
        ):
            mine, triton = _at(rows, arm, top), _at(rows, peer, top)
            if mine and triton:
                ratio = mine["rps"] / triton["rps"]
                ok = ratio >= TARGET_VS_TRITON and mine["p99_ms"] < triton["p99_ms"]
                lines.append(
                    f"- Dense decoder, c={top}, `{arm}` against `{peer}`: {ratio:.2f}x its "
                    f"requests/s ({mine['rps']:,.0f} vs {triton['rps']:,.0f}), p99 "
                    f"{mine['p99_ms']:.1f} vs {triton['p99_ms']:.1f} ms (target >= "
                    f"{TARGET_VS_TRITON}x with a lower p99): {_met(ok)}."
                )
            elif mine:
                why = dense["skipped"].get(peer, "not run")
                lines.append(f"- Dense decoder against {peer}: not measured ({why}).")
        before = _at(rows, "before", top)
        for arm, same in (("serve /v1", True), ("serve /v2 binary", False)):
            now = _at(rows, arm, top)
            if not (before and now):
                continue
            cut = now["cpu_ms_per_request"] / before["cpu_ms_per_request"]
            workload = (
                "the same JSON requests"
                if same
                else "binary tensors in and out instead of JSON: a deployer's choice, not "
                "the same workload"
            )
            lines.append(
                f"- Dense decoder, c={top}, server CPU per request, `{arm}` ({workload}): "
                f"{now['cpu_ms_per_request']:.3f} ms against {before['cpu_ms_per_request']:.3f}"
                f" ms before ({cut:.2f}x; target <= {TARGET_CPU_CUT}x): "
                f"{_met(cut <= TARGET_CPU_CUT)}."
            )
        o = dense.get("overload")
        if o:
            non503 = {k: v for k, v in o["codes"].items() if k not in ("200", "503")}
            ok = (
                o["hey_accepted_p99_ms"] <= o["timeout_ms"]
                and not non503
                and not o["socket_errors"]
            )
            lines.append(
                f"- Overload, c={o['concurrency']} against `--max-queue {o['queue']} "
                f"--timeout-ms {o['timeout_ms']:g}`: wrk saw {o['codes'].get('200', 0)} x 200 "
                f"and {o['codes'].get('503', 0)} x 503 ({o['rps']:,.0f} responses/s), other "
                f"statuses {non503 or 'none'}, socket errors {o['socket_errors'] or 'none'}; "
                f"hey's accepted requests: p50 {o['hey_accepted_p50_ms']:.1f} ms, p99 "
                f"{o['hey_accepted_p99_ms']:.1f} ms (hey: {o['hey_codes']}). Target p99 of "
                f"the accepted within the deadline, every excess a 503, no connection "
                f"errors: {_met(ok)}."
            )
    conv = result["models"].get("conv")
    if conv and conv.get("bare_rows_per_s"):
        rows = conv["rows"]
        top = max(r["concurrency"] for r in rows)
        best = max(
            (r for r in rows if r["concurrency"] == top and r["arm"].startswith("serve")),
            key=lambda r: r["rps"],
            default=None,
        )
        if best:
            ratio = best["rps"] / conv["bare_rows_per_s"]
            bare = ", ".join(f"{k}: {v:,.0f} rows/s" for k, v in conv.get("bare", {}).items())
            lines.append(
                f"- Conv decoder, c={top}: `{best['arm']}` serves {best['rps']:,.0f} rows/s, "
                f"{ratio:.0%} of a bare onnxruntime loop at batch 64 with the same two threads "
                f"({bare}; the better is the ceiling; target >= {TARGET_VS_BARE:.0%}): "
                f"{_met(ratio >= TARGET_VS_BARE)}."
            )
    return "\n".join(lines)


def render(result):
    sections = []
    for key, model in result["models"].items():
        family = "ae (dense)" if key == "dense" else "conv_ae"
        skipped = "".join(f"\n\n{arm}: skipped ({why})." for arm, why in model["skipped"].items())
        sections.append(f"### {family} decoder\n\n{table(model['rows'])}{skipped}")
    load = result["load"]
    load_text = (
        f"load average {load['start'][0]:.2f} when it started, {load['end'][0]:.2f} at the end"
    )
    body = "\n\n".join(sections)
    return f"""## Serving: `kerasae-runtime serve` side by side with Triton

One latent row (16 numbers) per request, a 28x28 image back, to the decoder of an `ae`
(dense) and a `conv_ae` ({result["dataset"]}, latent 16) exported to ONNX. wrk on the same
two cores drives each server for {result["seconds"]} s per cell (closed loop, c
connections); every server runs its defaults (serve: --max-batch 256, --max-delay-ms 5,
onnxruntime's default threads with spinning off). `/v1` is kerasae's JSON API, `/v2` the
Open Inference Protocol (JSON tensors); Triton is tritonserver 2.51 from nvidia-pytriton
0.7 with its Python backend running onnxruntime on the same decoder.onnx (dynamic batcher
500 us), driven with the same /v2 body; `before` is the server of commit 0c5cbec. Server
CPU is its whole process tree (workers, Triton's stubs) from /proc. Machine:
{result["machine"]}; {load_text}.

{body}

Targets:
{targets(result)}

Reproduce: `sudo apt-get install wrk hey`, make the Triton venv as in
`benchmarks/triton_decoder.py`, then `git worktree add /tmp/base 0c5cbec` and
`.venv/bin/python benchmarks/serve_load.py --triton-venv /tmp/triton-venv
--baseline-runtime /tmp/base/export` (rows in `benchmarks/results/serve_load.json`).
"""
