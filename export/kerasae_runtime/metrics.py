"""Prometheus metrics of `kerasae-runtime serve`: requests by endpoint and status, latency,
time queued before a model call and the call's own time, batch sizes (rows and requests per
onnxruntime call) and errors by kind (request, overload, deadline, loading, draining,
internal).

One process: a registry of its own, so two apps in one process (as in tests) do not
collide. Several (`--workers N`): prometheus-client's multiprocess mode, where every worker
writes its samples to files in one folder (PROMETHEUS_MULTIPROC_DIR, set by `serve` before
the workers start) and `/metrics`, whichever worker answers it, adds them all up.
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def _powers_of_two(limit):
    buckets, b = [], 1
    while b < limit:
        buckets.append(b)
        b *= 2
    return tuple(buckets) + (limit,)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, max_batch):
        self.shared = bool(os.environ.get(MULTIPROCESS))
        # multiprocess mode: samples go to the folder's files, not to a registry
        r = None if self.shared else CollectorRegistry()
        self.registry = r
        self.requests = Counter(
            "kerasae_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "kerasae_request_seconds",
            "request latency from arrival to response, seconds",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queued = Histogram(
            "kerasae_queue_seconds",
            "time a request waited for its model call, seconds",
            ["part"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.compute = Histogram(
            "kerasae_compute_seconds",
            "time of one onnxruntime call (a whole batch), seconds",
            ["part"],
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
        self.out_of_range = Counter(
            "kerasae_out_of_range",
            "requests accepted with inputs outside the training range (--allow-out-of-range)",
            ["endpoint"],
            registry=r,
        )
        self._children = {}

    def _child(self, metric, *labels):
        key = (id(metric), labels)  # labels() takes a lock and builds a key: done once
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_batch(self, part):
        """The batcher's report of one call: requests, rows, each request's wait, seconds."""

        def observe(requests, rows, waits, seconds):
            self._child(self.batch_requests, part).observe(requests)
            self._child(self.batch_rows, part).observe(rows)
            queued = self._child(self.queued, part)
            for wait in waits:
                queued.observe(wait)
            self._child(self.compute, part).observe(seconds)

        return observe

    def observe_request(self, endpoint, status, seconds, kind=None):
        self._child(self.requests, endpoint, str(status)).inc()
        self._child(self.latency, endpoint).observe(seconds)
        if status >= 400:
            self._child(self.errors, endpoint, kind or str(status)).inc()

    def observe_out_of_range(self, endpoint):
        self._child(self.out_of_range, endpoint).inc()

    def render(self):
        if not self.shared:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess  # only where workers share a folder

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
