"""A reader thread for character devices (/dev/input/js*, /dev/input/event*, /dev/hidraw*).

It opens the path non-blocking, waits with ``select`` (so ``stop()`` returns within ~50 ms) and
hands every chunk of bytes to ``on_bytes``. FIFOs work the same way, which is how tests replay
recorded device byte streams through the real read path.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import threading
from typing import Callable

log = logging.getLogger(__name__)


class DeviceFileReader:
    """Reads ``path`` on a thread; ``on_bytes(data)`` gets each chunk; ``error`` holds a fatal one."""

    def __init__(self, path: str, on_bytes: Callable[[bytes], None], chunk: int = 4096, name: str = "teleop-reader"):
        self.path = path
        self.on_bytes = on_bytes
        self.chunk = chunk
        self.name = name
        self.error: BaseException | None = None
        self._fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot open teleop device {self.path}: {exc.strerror}") from exc
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True, name=self.name)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._fd], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self._fd, self.chunk)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    continue
                self.error = exc  # unplugged: ENODEV
                log.warning("%s: %s", self.path, exc)
                return
            if not data:  # writer closed (FIFO) or device gone: wait for more / stop
                if self._stop.wait(0.02):
                    return
                continue
            try:
                self.on_bytes(data)
            except Exception as exc:  # a parser bug must not be silent
                self.error = exc
                log.exception("%s: parser failed", self.path)
                return
