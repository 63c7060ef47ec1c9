"""Work handed to a background thread: the encoder of an output video runs while the next chunk
is decoded and rendered (FFmpeg's codecs release the GIL, so the two overlap on a multi-core CPU).

    with in_background(out.write) as write:   # out: an open avscene.media.writer.VideoWriter
        for chunk in chunks:
            write(render(chunk), audio_of(chunk))   # returns at once unless `depth` calls wait

The calls run in order on one thread. An error there is raised again in the caller, at its next
call or when the block ends; an error in the block stops the thread without running the calls
still queued.

The other way round, :func:`prefetched` reads ahead: the next window is decoded while the network
runs on this one.

    for t0, (frames, audio) in prefetched(read_window, starts):
        scores.append(net(frames, audio))
"""

from __future__ import annotations

import contextlib
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")

_STOP = object()


class _Worker(threading.Thread):
    def __init__(self, call: Callable, depth: int):
        super().__init__(name="avscene-background", daemon=True)
        self.call, self.jobs = call, queue.Queue(maxsize=depth)
        self.error: BaseException | None = None

    def run(self) -> None:
        while (job := self.jobs.get()) is not _STOP:
            if self.error is None:  # after an error the rest is dropped, not run
                try:
                    self.call(*job[0], **job[1])
                except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
                    self.error = err

    def submit(self, *args, **kwargs) -> None:
        self.raise_error()
        self.jobs.put((args, kwargs))

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error


@contextlib.contextmanager
def in_background(call: Callable, *, depth: int = 2) -> Iterator[Callable]:
    """A function that queues ``call(*args, **kwargs)`` for a worker thread (at most ``depth``
    calls waiting: the caller blocks beyond that, which bounds the memory the queue holds). The
    block's end waits for every queued call."""
    worker = _Worker(call, depth)
    worker.start()
    try:
        yield worker.submit
    except BaseException:
        worker.error = worker.error or RuntimeError("stopped")
        worker.jobs.put(_STOP)
        worker.join()
        raise
    worker.jobs.put(_STOP)
    worker.join()
    worker.raise_error()


def prefetched(read: Callable[[T], object], items: Iterable[T], *, depth: int = 1) -> Iterator[tuple[T, object]]:
    """``(item, read(item))`` for each item in order, the reads running on one worker thread up to
    ``depth`` items ahead of the caller (so at most ``depth + 1`` results are held). An error in a
    read is raised in the caller when it reaches that item."""
    items = list(items)
    with ThreadPoolExecutor(1, thread_name_prefix="avscene-prefetch") as pool:
        pending = [pool.submit(read, item) for item in items[: depth + 1]]
        try:
            for i, item in enumerate(items):
                result = pending.pop(0).result()
                if i + depth + 1 < len(items):
                    pending.append(pool.submit(read, items[i + depth + 1]))
                yield item, result
        finally:
            for future in pending:
                future.cancel()
