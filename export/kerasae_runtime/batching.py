"""Dynamic batching: concurrent requests to one part share one onnxruntime call.

A model server's throughput comes from batching (Crankshaw et al. 2017, "Clipper"; the
same idea as Triton's dynamic batcher): one call on 64 rows costs far less than 64 calls
on one row, because each call pays fixed overhead and a batch uses the cores better.
Requests wait in an asyncio queue; one worker takes the first, keeps collecting until the
batch has `max_batch` rows or `max_delay` seconds have passed since the first arrived,
runs the whole batch in a thread (the event loop stays free to accept more), then splits
the outputs back by row offsets. The wait is adaptive: after a batch of one request (no
concurrent load) the next request runs at once, so a lone client pays no delay; once
batches hold several requests, the worker waits up to `max_delay` to fill them. A request never
crosses batches, and one that would
overflow the current batch opens the next one.
"""

import asyncio

import numpy as np

_STOP = object()


class Batcher:
    """`await batcher.submit(x)` -> what `fn(x)` returns for those rows: a dict of arrays
    (or one array), each with len(x) rows. fn runs on the concatenation of many requests."""

    def __init__(
        self, fn, max_batch=256, max_delay=0.005, executor=None, on_batch=None, instances=1
    ):
        self.fn, self.max_batch, self.max_delay = fn, int(max_batch), float(max_delay)
        self.executor, self.on_batch, self.instances = executor, on_batch, int(instances)
        self.queue, self._worker, self._carry = None, None, None
        self._busy = False  # the last batch held more than one request
        self._calls = set()

    def start(self):
        self.queue = asyncio.Queue()
        self._slots = asyncio.Semaphore(self.instances)
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, x, deadline=None, late=None):
        """fn's rows for x; at `deadline` (loop time) a request still waiting is answered
        with the exception `late()` and dropped from its batch."""
        if self._worker is None or self._worker.done():
            raise RuntimeError("the batcher is not running (the server is shutting down)")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.queue.put_nowait((x, future, loop.time()))  # unbounded: the server admits
        if deadline is None:
            return await future
        timer = loop.call_at(deadline, _expire, future, late)  # cheaper than wait_for
        try:
            return await future
        finally:
            timer.cancel()

    async def close(self):
        """Finish everything already queued, then stop (graceful shutdown)."""
        if self._worker is not None and not self._worker.done():
            self.queue.put_nowait((_STOP, None, 0.0))
            await self._worker

    async def _collect(self):
        """One batch: the carried-over request or the next one, plus whatever arrives
        within max_delay, up to max_batch rows. Returns (items, stop)."""
        first = self._carry or await self.queue.get()
        self._carry = None
        if first[0] is _STOP:
            return [], True
        items, rows = [first], len(first[0])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.max_delay if self._busy else 0.0)
        while rows < self.max_batch:
            try:
                if self.queue.empty():
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    item = await asyncio.wait_for(self.queue.get(), timeout)
                else:
                    item = self.queue.get_nowait()
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                break
            if item[0] is _STOP or rows + len(item[0]) > self.max_batch:
                self._carry = item
                break
            items.append(item)
            rows += len(item[0])
        self._busy = len(items) > 1
        return items, False

    async def _run(self):
        """Collect a batch once a call slot is free (`instances` calls run side by side,
        like Triton's instance count: with one onnxruntime thread each, batches use the
        cores in parallel instead of splitting one batch across threads)."""
        loop = asyncio.get_running_loop()
        while True:
            await self._slots.acquire()
            items, stop = await self._collect()
            if stop:
                self._slots.release()
                if self._calls:
                    await asyncio.gather(*self._calls)
                return
            # clients that left, or whose deadline passed while they waited
            items = [item for item in items if not item[1].done()]
            if not items:
                self._slots.release()
                continue
            call = loop.create_task(self._call(items))
            self._calls.add(call)
            call.add_done_callback(self._calls.discard)

    async def _call(self, items):
        loop = asyncio.get_running_loop()
        xs = [x for x, _, _ in items]
        begin = loop.time()
        try:
            out = await loop.run_in_executor(
                self.executor, self.fn, np.concatenate(xs) if len(xs) > 1 else xs[0]
            )
        except Exception as exc:  # the whole batch failed: every request hears why
            for _, future, _ in items:
                if not future.done():
                    future.set_exception(exc)
            return
        finally:
            self._slots.release()
            if self.on_batch:
                waits = [begin - t for _, _, t in items]
                self.on_batch(len(items), sum(map(len, xs)), waits, loop.time() - begin)
        start = 0
        for x, future, _ in items:
            stop_row = start + len(x)
            part = (
                {k: v[start:stop_row] for k, v in out.items()}
                if isinstance(out, dict)
                else out[start:stop_row]
            )
            if not future.done():
                future.set_result(part)
            start = stop_row


def _expire(future, late):
    if not future.done():
        future.set_exception(late())


class Direct:
    """The same interface without batching: every request is its own call (--no-batching)."""

    def __init__(self, fn, executor=None, on_batch=None):
        self.fn, self.executor, self.on_batch = fn, executor, on_batch

    def start(self):
        pass

    async def submit(self, x, deadline=None, late=None):
        loop = asyncio.get_running_loop()
        begin = loop.time()
        if deadline is not None and begin >= deadline:
            raise late()
        try:
            return await loop.run_in_executor(self.executor, self.fn, x)
        finally:
            if self.on_batch:
                self.on_batch(1, len(x), [0.0], loop.time() - begin)

    async def close(self):
        pass
