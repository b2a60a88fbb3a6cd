"""Large bodies off the event loop: parsing and serialising them in a helper process.

Parsing JSON (orjson, then numpy) is C code that holds the GIL for its whole run: a
12 MB body parsed on the event loop, or in a thread, stalls every other request (a
liveness probe sent meanwhile took 3.27 s). Bodies of at least `threshold` bytes, and
outputs of at least `threshold / 8` values, are handed to a process of their own
(spawned, never forked: onnxruntime's threads do not survive a fork), so the event loop
keeps answering health checks and small requests while they are worked on. Small ones
stay in process, where a round trip to another process would cost more than the work.
"""

import asyncio
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

THRESHOLD = 256 << 10  # bytes


def _ready():
    return True


def _exit_with(parent):
    """In the helper: exit when the server process is gone, however it ended (a server
    killed by its signal runs no cleanup that would stop the helper)."""

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


class Offload:
    def __init__(self, threshold=THRESHOLD, workers=1):
        self.threshold, self.workers, self.pool = int(threshold), int(workers), None

    async def start(self):
        """Spawn the helper and wait until it has imported what it runs (once, at startup,
        so the first large body does not pay for it)."""
        context = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_exit_with, initargs=(os.getpid(),)
        )
        await asyncio.get_running_loop().run_in_executor(self.pool, _ready)

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    async def run(self, size, fn, *args):
        """fn(*args), in the helper process when `size` (bytes) reaches the threshold."""
        if self.pool is None or size < self.threshold:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)
