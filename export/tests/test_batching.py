"""The dynamic batcher on its own: batches computed side by side (`instances`), deadlines
that drop a waiting request, and every request answered with its own rows."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from kerasae_runtime.batching import Batcher


class Late(Exception):
    pass


def _run(instances, fn, requests, deadline=None):
    async def scenario():
        batcher = Batcher(fn, 4, 0.0, ThreadPoolExecutor(4), instances=instances)
        batcher.start()
        loop = asyncio.get_running_loop()
        when = None if deadline is None else loop.time() + deadline
        results = await asyncio.gather(
            *(batcher.submit(x, when, Late) for x in requests), return_exceptions=True
        )
        await batcher.close()
        return results

    return asyncio.run(scenario())


def test_two_instances_compute_two_batches_at_once():
    both = threading.Barrier(2, timeout=1)  # passes only when two calls run together

    def fn(x):
        both.wait()
        return x * 2

    requests = [np.full((4, 1), i, np.float32) for i in range(2)]  # one full batch each
    results = _run(2, fn, requests)
    for x, y in zip(requests, results):
        np.testing.assert_array_equal(y, x * 2)
    both.reset()
    results = _run(1, fn, requests)  # one at a time: the barrier breaks
    assert all(isinstance(r, threading.BrokenBarrierError) for r in results)


def test_a_request_past_its_deadline_is_dropped_from_its_batch():
    release, seen = threading.Event(), []

    def fn(x):
        seen.append(len(x))
        release.wait(5)
        return x

    async def scenario():
        batcher = Batcher(fn, 4, 0.0, ThreadPoolExecutor(2))
        batcher.start()
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(batcher.submit(np.ones((4, 1)), None, Late))
        await asyncio.sleep(0.05)  # the first batch is running: the next one waits
        late = asyncio.ensure_future(batcher.submit(np.ones((1, 1)), loop.time() + 0.1, Late))
        ok = asyncio.ensure_future(batcher.submit(np.ones((2, 1)), None, Late))
        with pytest.raises(Late):
            await late
        release.set()
        await asyncio.gather(first, ok)
        await batcher.close()

    asyncio.run(scenario())
    assert seen == [4, 2]  # the late request never reached the model
