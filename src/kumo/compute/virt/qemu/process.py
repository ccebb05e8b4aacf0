"""QEMU processes: start them detached from the agent, recognise them later, notice when they end.

* **Detached**: ``posix_spawn`` with a new session, so Ctrl-C on ``kumo up``
  or the agent dying does not take the guests with it (libvirt keeps QEMU
  running across ``libvirtd`` restarts the same way). No Python ``Popen``
  object is kept, so nothing in the interpreter reaps the process behind
  the driver's back.
* **Recognised** by pid *and* command line: a pid file alone could name a
  recycled pid after a host reboot, so the process must still be a QEMU
  whose command line carries the instance's uuid, and not a zombie.
* **Watched** through a pidfd (Linux 5.3+): readable the moment the process
  ends, for our own children and for adopted ones alike; our children are
  then reaped. An adopted QEMU (started by an agent that has since died) is
  the child of init, which reaps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

#: Signals the agent may have set to ignored or handled; the child starts with the defaults.
_DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE, signal.SIGCHLD, signal.SIGUSR1)


def launch(argv: Sequence[str], log_path: Path) -> int:
    """Start ``argv`` in its own session, stdin from /dev/null, stdout and stderr appended to ``log_path``."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawn(argv[0], list(argv), dict(os.environ), file_actions=actions, setsid=True,
                          setsigmask=(), setsigdef=_DEFAULT_SIGNALS)


def process_state(pid: int) -> str | None:
    """The one-letter state from ``/proc/<pid>/stat`` (R, S, Z ...), None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return stat.rpartition(")")[2].split()[0]


def has_ended(pid: int) -> bool:
    """Our own unreaped child is gone or a zombie. Used while QEMU starts, when its command line cannot be
    trusted yet: the vfork-style spawn returns once the child has swapped in QEMU's memory, but the kernel
    fills in the new argv a moment later, so ``/proc/<pid>/cmdline`` may briefly read empty."""
    return process_state(pid) in (None, "Z", "X")


def is_guest_process(pid: int, marker: str) -> bool:
    """``pid`` is alive (not a zombie) and its command line contains ``marker`` (the instance uuid)."""
    state = process_state(pid)
    if state is None or state in ("Z", "X"):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return marker.encode() in cmdline


def reap(pid: int) -> None:
    """Collect our child's exit status if it has ended; an adopted process is not ours to reap."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


async def wait_gone(pid: int, marker: str, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the guest process to end; True when it has."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.01
    while True:
        if not is_guest_process(pid, marker):
            reap(pid)  # after the check: a process that ends between a reap and the check stays a zombie
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)


class ExitWatch:
    """Calls ``on_exit()`` once when the process ends (a pidfd in the event loop; no thread, no polling)."""

    def __init__(self, pid: int, on_exit: Callable[[], None]) -> None:
        self.pid = pid
        self._on_exit: Callable[[], None] | None = on_exit
        self._loop = asyncio.get_running_loop()
        self._fd: int | None = None
        try:
            self._fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._loop.call_soon(self._fire)
            return
        self._loop.add_reader(self._fd, self._fire)

    def _fire(self) -> None:
        on_exit = self._on_exit
        self.cancel()
        if on_exit is not None:
            reap(self.pid)
            on_exit()

    def cancel(self) -> None:
        """Stop watching (the driver is ending the process itself); ``on_exit`` will not be called."""
        self._on_exit = None
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(fd)
            os.close(fd)
