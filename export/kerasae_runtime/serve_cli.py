"""The `kerasae-runtime serve` command: its flags and the start of the server (`launch.py`),
kept apart from cli.py so the other commands' parser stays short. Needs the serve extra
only when the command runs."""

import argparse
import sys


def positive(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def positive_float(text, low=0.0, inclusive=False):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value >= low if inclusive else value > low) or value == float("inf"):
        what = "non-negative" if inclusive else "positive"
        raise argparse.ArgumentTypeError(f"must be a {what} number, got {text!r}")
    return value


def non_negative_float(text):
    return positive_float(text, 0.0, inclusive=True)


def add_serve_parser(sub, common):
    p = sub.add_parser("serve", help="an HTTP server with dynamic batching (the serve extra)")
    common(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--max-batch",
        type=positive,
        default=256,
        help="rows per onnxruntime call, and the most one request may send",
    )
    p.add_argument(
        "--max-delay-ms", type=float, default=5.0, help="how long a batch waits for more requests"
    )
    p.add_argument("--workers", type=positive, default=1, help="server processes")
    p.add_argument("--max-request-bytes", type=positive, default=16 << 20)
    p.add_argument(
        "--threads", type=positive, default=None, help="onnxruntime intra-op threads per session"
    )
    p.add_argument(
        "--grpc-port",
        type=positive,
        default=None,
        help="also serve the Open Inference Protocol over gRPC on this port (the grpc extra)",
    )
    p.add_argument(
        "--instances",
        type=positive,
        default=1,
        help="batches computed side by side per part (Triton's instance count); on the CPU "
        "use it with --threads 1 so each batch has a core",
    )
    p.add_argument(
        "--no-batching", action="store_true", help="run every request alone (for comparison)"
    )
    p.add_argument(
        "--max-queue",
        type=positive,
        default=512,
        help="requests inside a worker at once; the next is answered 503 with Retry-After",
    )
    p.add_argument(
        "--timeout-ms",
        type=positive_float,
        default=10_000.0,
        help="a request still waiting for its model call after this is answered 503 "
        "(a client lowers it with the X-Kerasae-Timeout-Ms header)",
    )
    p.add_argument(
        "--drain-seconds",
        type=non_negative_float,
        default=2.0,
        help="after SIGTERM: readiness false while requests are still served, then shut down",
    )
    p.add_argument(
        "--allow-out-of-range",
        action="store_true",
        help="accept x outside the training range (counted in /metrics) instead of a 422",
    )
    p.set_defaults(func=cmd_serve)


SERVE_EXTRA = "kerasae-runtime serve needs the serve extra: pip install 'kerasae-runtime[serve]'"


GRPC_EXTRA = "--grpc-port needs the grpc extra: pip install 'kerasae-runtime[grpc]'"


def cmd_serve(args):
    try:
        import orjson  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        print(SERVE_EXTRA, file=sys.stderr)
        return 2
    if args.grpc_port:
        try:
            import grpc  # noqa: F401
            from tritonclient.grpc import service_pb2  # noqa: F401
        except ImportError:
            print(GRPC_EXTRA, file=sys.stderr)
            return 2
    from kerasae_runtime import launch, serve

    settings = serve.Settings(
        args.export_dir,
        device=args.device,
        precision=args.precision,
        threads=args.threads,
        max_batch=args.max_batch,
        max_delay_ms=args.max_delay_ms,
        max_request_bytes=args.max_request_bytes,
        batching=not args.no_batching,
        max_queue=args.max_queue,
        timeout_ms=args.timeout_ms,
        drain_seconds=args.drain_seconds,
        allow_out_of_range=args.allow_out_of_range,
        instances=args.instances,
        grpc_port=args.grpc_port,
    )
    launch.run(settings, host=args.host, port=args.port, workers=args.workers)
