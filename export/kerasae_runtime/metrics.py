"""Prometheus metrics of `kerasae-runtime serve`, in a registry of their own (so two apps in
one process, as in tests, do not collide): requests by endpoint and status, latency,
batch sizes (rows and requests per onnxruntime call) and errors by kind."""

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _powers_of_two(limit):
    buckets, b = [], 1
    while b < limit:
        buckets.append(b)
        b *= 2
    return tuple(buckets) + (limit,)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, max_batch):
        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "kerasae_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "kerasae_request_seconds",
            "request latency, seconds",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        sizes = _powers_of_two(max(int(max_batch), 1))
        self.batch_rows = Histogram(
            "kerasae_batch_rows", "rows per onnxruntime call", ["part"], buckets=sizes, registry=r
        )
        self.batch_requests = Histogram(
            "kerasae_batch_requests",
            "requests coalesced into one onnxruntime call",
            ["part"],
            buckets=sizes,
            registry=r,
        )
        self.errors = Counter(
            "kerasae_errors",
            "failed requests by endpoint and kind",
            ["endpoint", "kind"],
            registry=r,
        )

    def observe_batch(self, part):
        def observe(requests, rows):
            self.batch_requests.labels(part).observe(requests)
            self.batch_rows.labels(part).observe(rows)

        return observe

    def observe_request(self, endpoint, status, seconds, kind=None):
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if status >= 400:
            self.errors.labels(endpoint, kind or str(status)).inc()

    def render(self):
        return generate_latest(self.registry)
