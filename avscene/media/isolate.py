"""Decoding in a worker process, so that a native crash or a hang inside FFmpeg costs one file,
not the whole run.

PyAV runs FFmpeg's C code in our process: a corrupt file that makes a demuxer or decoder
segfault ends Python with it, and one that sends it into an endless loop hangs the batch. Inside
``with isolated_decoding():`` every :func:`~avscene.media.probe` and
:func:`~avscene.media.read_clip` of the calling thread runs instead in one persistent child
process (a :class:`DecodeWorker`)::

    parent (torch, the batch)                     child (PyAV + NumPy only)
    probe(path) / read_clip(path, ...)  --(fn, args)-->  fn(*args): decode, tick() per packet
          waits for: the reply, the child's death,        |
          or no tick for ``stall_s`` seconds   <--(result | exception)--
    crash -> DecoderCrashError(path), stall -> kill + DecoderStallError(path); the next call
    starts a fresh child.

Progress is counted by :func:`tick`, which the demux loops of the probe and the reader call once
per packet: the stall timeout measures time without progress, not the length of a read, so a
long file read in one call (a whole soundtrack) is never cut short, while a decoder stuck in one
place is stopped after ``stall_s``. The child is a fresh interpreter (never a fork of a parent
that runs torch's threads) that imports only the media layer, never torch.

``AVSCENE_ISOLATE_DECODER=0`` decodes in-process instead (no worker: the pre-isolation
behaviour); ``AVSCENE_DECODER_STALL_S`` sets the stall timeout (default 60 s).
``benchmarks/isolate_cost.py`` measures what the worker costs.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection, Pipe
from pathlib import Path
from typing import Any, Callable, Iterator

from avscene.media.errors import DecoderCrashError, DecoderStallError, MediaError

#: Seconds without a decoded packet after which a worker is taken to hang.
DEFAULT_STALL_S = 60.0
#: Seconds between checks of the worker's progress while waiting for its reply.
_POLL_S = 0.25

#: The worker of the current thread's ``isolated_decoding`` block (None: decode in-process).
_ACTIVE: contextvars.ContextVar[DecodeWorker | None] = contextvars.ContextVar("avscene_decode_worker",
                                                                              default=None)
#: In a worker process: the pipe to the parent, on which :func:`tick` reports progress.
_channel: Connection | None = None
#: When the worker last reported progress (time.monotonic()).
_last_report = 0.0
#: Seconds between progress reports: well under any stall timeout, rare enough to cost nothing.
_REPORT_S = 0.5


def tick() -> None:
    """Count one unit of decoding progress (a packet): in a worker process, tells the parent
    it is not stuck (at most every :data:`_REPORT_S`); a no-op elsewhere."""
    global _last_report
    if _channel is not None:
        now = time.monotonic()
        if now - _last_report >= _REPORT_S:
            _channel.send(("progress", None))
            _last_report = now


def active_worker() -> DecodeWorker | None:
    """The worker that media reads of this thread go to, or None to decode in-process."""
    return _ACTIVE.get()


def decodes_in_worker(note_input: Callable[[Any], None]):
    """Decorator of a media function ``fn(path, ...)``: inside :func:`isolated_decoding` a call
    runs in the block's worker (``note_input(path)`` is called here first, so that this process
    still knows the file as an input), elsewhere it runs here. The worker gets the decorated
    function by name, and runs it there in-process, as it has no worker of its own."""

    def decorate(fn):
        @functools.wraps(fn)
        def dispatch(path, *args, **kwargs):
            worker = _ACTIVE.get()
            if worker is None:
                return fn(path, *args, **kwargs)
            note_input(path)
            return worker.call(dispatch, path, *args, **kwargs)

        return dispatch

    return decorate


def isolation_enabled() -> bool:
    """False when ``AVSCENE_ISOLATE_DECODER`` is ``0`` / ``false`` / ``no`` / ``off``, and where
    the worker cannot run (it needs POSIX: inherited pipe descriptors, signals as exit codes)."""
    if os.name != "posix":
        return False
    return os.environ.get("AVSCENE_ISOLATE_DECODER", "1").strip().lower() not in ("0", "false", "no", "off")


def default_stall_s() -> float:
    """The stall timeout (s): ``AVSCENE_DECODER_STALL_S``, else :data:`DEFAULT_STALL_S`."""
    text = os.environ.get("AVSCENE_DECODER_STALL_S", "")
    try:
        value = float(text) if text.strip() else DEFAULT_STALL_S
    except ValueError:
        raise ValueError(f"AVSCENE_DECODER_STALL_S must be a number of seconds, got {text!r}") from None
    if not value > 0:
        raise ValueError(f"AVSCENE_DECODER_STALL_S must be > 0 s, got {text!r}")
    return value


@contextlib.contextmanager
def isolated_decoding(*, stall_s: float | None = None, enabled: bool | None = None) -> Iterator[DecodeWorker | None]:
    """Within the block, this thread's probes and clip reads run in one :class:`DecodeWorker`
    (yielded), or in-process (None yielded) when isolation is off: ``enabled=False``, or
    ``enabled=None`` and ``AVSCENE_ISOLATE_DECODER=0``. An enabled block inside another reuses
    the outer worker."""
    enabled = isolation_enabled() if enabled is None else enabled
    if enabled and _ACTIVE.get() is not None:
        yield _ACTIVE.get()
        return
    with (DecodeWorker(stall_s=default_stall_s() if stall_s is None else stall_s) if enabled
          else contextlib.nullcontext()) as worker:
        token = _ACTIVE.set(worker)
        try:
            yield worker
        finally:
            _ACTIVE.reset(token)


class DecodeWorker:
    """One child process that runs media functions on request (:meth:`call`); started on first
    use and again after a crash or a stall. Calls from several threads take turns.

    ``memory_limit`` (bytes) caps the child's address space, so that a file whose header asks
    for an absurd allocation fails inside FFmpeg (a clear error) instead of exhausting memory.
    ``time_limit_s`` bounds each call however much progress it makes (a demuxer that loops over
    its input forever keeps making "progress"); None (the default) leaves a long read alone.
    """

    def __init__(self, *, stall_s: float = DEFAULT_STALL_S, memory_limit: int | None = None,
                 time_limit_s: float | None = None):
        if not stall_s > 0 or (time_limit_s is not None and not time_limit_s > 0):
            raise ValueError(f"stall_s and time_limit_s must be > 0 s, got {stall_s!r} and {time_limit_s!r}")
        self.stall_s, self.memory_limit, self.time_limit_s = float(stall_s), memory_limit, time_limit_s
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._turn = threading.Lock()  # one request in flight on the pipe
        #: Child processes started so far (the first, plus one after each crash or stall).
        self.starts = 0

    def __enter__(self) -> DecodeWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        # A fresh interpreter, not multiprocessing's spawn/forkserver: those re-run the parent's
        # __main__ script in the child, and a plain fork would copy torch's threads.
        parent_end, child_end = Pipe(duplex=True)
        command = [sys.executable, "-c", f"import avscene.media.isolate as m; m._serve({child_end.fileno()})"]
        # the folder holding this avscene first: the child imports the same package, installed or not
        search = [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in search if p)}
        self._process = subprocess.Popen(command, pass_fds=[child_end.fileno()], stdin=subprocess.DEVNULL, env=env)
        child_end.close()
        self._conn = parent_end
        self.starts += 1
        parent_end.send((sys.path, self.memory_limit))

    def call(self, fn: Callable[..., Any], path, *args, **kwargs) -> Any:
        """``fn(path, *args, **kwargs)`` in the worker: its result, or the exception it raised
        (re-raised here, the child's traceback attached as a note). ``fn`` must be importable
        by name (a module-level function). Raises DecoderCrashError when the worker dies and
        DecoderStallError when it makes no progress for ``stall_s``; both name ``path``."""
        with self._turn:
            return self._call(fn, path, *args, **kwargs)

    def _call(self, fn: Callable[..., Any], path, *args, **kwargs) -> Any:
        if self._process is None or self._process.poll() is not None:
            self._stop()  # a worker that died between calls is replaced
            self._start()
        try:
            try:
                self._conn.send((fn, (path, *args), kwargs))
            except (BrokenPipeError, ConnectionError):
                reply = None
            else:
                reply = self._wait(path)
        except BaseException:  # Ctrl-C or an error while waiting: the worker's state is unknown
            self._stop()
            raise
        if reply is None:
            raise self._died(path)
        status, value = reply
        if status == "raise":
            raise value
        return value

    def _wait(self, path) -> tuple[str, Any] | None:
        """The worker's reply, or None when it died first; stops a stalled worker. The worker
        sends ``("progress", None)`` while it decodes (see :func:`tick`)."""
        began = since = time.monotonic()
        while True:
            if self._conn.poll(_POLL_S):
                try:
                    message = self._conn.recv()
                except (EOFError, ConnectionError):
                    return None
                if message[0] == "reply":
                    return _receive_reply(self._conn, message[1], message[2])
                since = time.monotonic()
            elif self._process.poll() is not None:
                return None
            elif time.monotonic() - since > self.stall_s:
                self._stop()
                raise DecoderStallError(path, f"the decoder made no progress for {self.stall_s:g} s on this file "
                                              "and was stopped; the file is skipped")
            if self.time_limit_s is not None and time.monotonic() - began > self.time_limit_s:
                self._stop()
                raise DecoderStallError(path, f"the decoder did not finish within {self.time_limit_s:g} s on this "
                                              "file and was stopped; the file is skipped")

    def _died(self, path) -> DecoderCrashError:
        try:
            code = self._process.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        self._stop()
        if code is not None and code < 0:
            try:
                how = signal.Signals(-code).name
            except ValueError:
                how = f"signal {-code}"
        else:
            how = f"exit code {code}"
        return DecoderCrashError(path, f"the decoder crashed ({how}) reading this file; the file is skipped")

    def _stop(self) -> None:
        """Kill the child (if any); the next call starts a new one."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None

    def close(self) -> None:
        """Ask the child to exit, then make sure it has."""
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(OSError, ValueError, subprocess.TimeoutExpired):
                self._conn.send(None)
                self._process.wait(2)
        self._stop()


def _serve(fd: int) -> None:
    """The worker's loop, on the pipe ``fd``: first the parent's ``(sys.path, memory_limit)``,
    then requests ``(fn, args, kwargs)``, each answered with ``("ok", result)`` or
    ``("raise", exception)``; a ``None`` request or a closed pipe ends it."""
    global _channel
    conn = Connection(fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    search_path, memory_limit = conn.recv()
    sys.path[:] = search_path  # the parent's: fn may live in a module only it can find (a test)
    if memory_limit:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    _channel = conn
    while True:
        try:
            request = conn.recv()
        except (EOFError, ConnectionError):
            return
        if request is None:
            return
        fn, args, kwargs = request
        try:
            reply = ("ok", fn(*args, **kwargs))
        except Exception as err:
            reply = ("raise", _portable(err))
        try:
            _send_reply(conn, reply)
        except (pickle.PicklingError, TypeError, AttributeError) as err:  # a result that cannot be sent
            _send_reply(conn, ("raise", RuntimeError(f"the decode worker could not send back its result ({err})")))


# A reply crosses the pipe as a pickle whose large buffers (the arrays of a clip) travel out of
# band (pickle protocol 5): ("reply", pickle, [buffer sizes]) as one message, then each buffer's
# raw bytes, read by the parent straight into the memory the arrays will own. A clip's frames
# are copied once each way by the kernel, not pickled, framed and copied again.


def _send_reply(conn: Connection, reply: tuple[str, Any]) -> None:
    buffers: list[pickle.PickleBuffer] = []
    header = pickle.dumps(reply, protocol=5, buffer_callback=buffers.append)
    views = [b.raw() for b in buffers]
    conn.send(("reply", header, [v.nbytes for v in views]))
    for view in views:
        while view.nbytes:
            view = view[os.write(conn.fileno(), view):]


def _receive_reply(conn: Connection, header: bytes, sizes: list[int]) -> tuple[str, Any] | None:
    """The reply whose pickle is ``header``, reading its ``sizes`` bytes of buffers from the
    pipe; None when the worker died before sending them all."""
    buffers = []
    for size in sizes:
        buffer = bytearray(size)
        view, got = memoryview(buffer), 0
        while got < size:
            try:
                n = os.readv(conn.fileno(), [view[got:]])
            except OSError:
                n = 0
            if n == 0:
                return None
            got += n
        buffers.append(buffer)
    return pickle.loads(header, buffers=buffers)


def _portable(err: Exception) -> Exception:
    """``err`` as it can cross the pipe: itself, with the child's traceback as a note unless it
    is a MediaError (an expected, already clear failure), or a RuntimeError that describes it
    when it does not pickle."""
    if not isinstance(err, MediaError):
        err.add_note("in the decode worker:\n" + "".join(traceback.format_exception(err)))
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}\n" + "".join(traceback.format_exception(err)))
