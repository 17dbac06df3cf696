"""Run requests one at a time off the caller's thread; the newest request wins.

A widget submits a request on every change. One worker thread runs them in turn, and a request submitted while
another is in progress supersedes both

* the request still waiting: it is dropped without running, and
* the run in progress: its ``stale()`` turns true, so it can stop at its next phase by raising :class:`Superseded`,
  and whatever it returns or raises is dropped.

So only the latest request's result (or error) is handed on, however fast the requests come. ``background=False``
runs each request on the caller's thread instead (tests, scripts); the rules are the same.
"""

from __future__ import annotations

import threading
from typing import Any, Callable


class Superseded(Exception):
    """A newer request arrived while this run was in progress."""


class LatestWorker:
    """One background thread, started on demand, that runs the latest request and hands on its outcome.

        run(request, stale) -> result   the work; ``stale()`` is true once a newer request was submitted
        on_result(request, result)      the latest request's result
        on_error(request, error)        the latest request's exception (other than Superseded)
        on_queued(request)              a request was accepted (e.g. show "running…")

    The three ``on_`` callbacks run under the worker's lock, so a result is never handed on after a newer request
    was queued.
    """

    def __init__(self, run: Callable[[Any, Callable[[], bool]], Any], on_result: Callable[[Any, Any], None],
                 on_error: Callable[[Any, Exception], None], on_queued: Callable[[Any], None] = lambda request: None,
                 background: bool = True):
        self.run, self.background = run, background
        self.on_result, self.on_error, self.on_queued = on_result, on_error, on_queued
        self._lock = threading.Lock()
        self._latest = 0  # the number of the newest request
        self._pending: tuple[int, Any] | None = None  # the request waiting to run, with its number
        self._thread: threading.Thread | None = None  # the worker, while it has requests to run

    def submit(self, request) -> None:
        """Queue ``request`` in place of any waiting one, and mark the run in progress stale."""
        with self._lock:
            self._latest += 1
            self._pending = (self._latest, request)
            self.on_queued(request)
            if self.background:
                if self._thread is None:  # else the running worker picks the request up when its run ends
                    self._thread = threading.Thread(target=self._drain, daemon=True)
                    self._thread.start()
                return
        self._drain()

    def wait(self) -> None:
        """Block until every request so far is done."""
        while (thread := self._thread) is not None and thread is not threading.current_thread():
            thread.join()

    def is_stale(self, number: int) -> bool:
        """Whether the request numbered ``number`` has been superseded."""
        return number != self._latest

    def _drain(self) -> None:
        try:
            while True:
                with self._lock:
                    job, self._pending = self._pending, None
                    if job is None:
                        if self._thread is threading.current_thread():
                            self._thread = None
                        return
                number, request = job
                try:
                    result = self.run(request, lambda: self.is_stale(number))
                except Superseded:
                    continue
                except Exception as err:  # noqa: BLE001 - any failure is the caller's to see, through on_error
                    with self._lock:
                        if not self.is_stale(number):
                            self.on_error(request, err)
                    continue
                with self._lock:
                    if not self.is_stale(number):
                        self.on_result(request, result)
        finally:  # on_result or on_error raised: let the next submit start a fresh thread (and wait() return)
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None
