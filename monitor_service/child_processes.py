"""Child processes on loopback for the demo, the local stack, the benchmarks and the tests: free
ports, start with the log in a file, wait for HTTP readiness, stop by PID. Standard library only;
the monitor itself never imports this.

Everything waits with a deadline and polls; nothing sleeps a fixed time and hopes. Failures carry
the tail of the process's log, which is where the reason usually is.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

LOOPBACK = "127.0.0.1"
_T = TypeVar("_T")
_PR_SET_PDEATHSIG = 1


class ProcessError(RuntimeError):
    """A process could not be started, got ready, or stopped; carries its log tail."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(f"{message}\n--- log tail ---\n{log_tail}" if log_tail else message)
        self.log_tail = log_tail


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, below the kernel's ephemeral
    range: a port the OS picks for `bind(0)` can be taken, before our child binds it, as the local
    end of some outgoing connection (a NATS node dialling its routes did that). Never the same port
    twice in one process."""
    first, end = _port_range(_ephemeral_low())
    for _ in range(200):
        port = random.randrange(first, end) if end > first + 500 else 0
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise ProcessError("no free TCP port on 127.0.0.1")


_PORTS_FROM = 20000
_handed_out: set[int] = set()


def _port_range(ephemeral_low: int) -> tuple[int, int]:
    """[first, end) below the ephemeral range; each of pytest-xdist's parallel workers gets its own
    slice, so two of them never pick the same port."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    workers = max(1, workers)
    index = (int(worker) if worker.isdigit() else 0) % workers  # a replaced worker gets a new number
    width = max(0, min(ephemeral_low, 65536) - _PORTS_FROM) // workers
    first = _PORTS_FROM + index * width
    return first, first + width


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0  # not Linux: let the OS pick


def port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (checked the way uvicorn binds: with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET `url`; (status, body) for any HTTP status; raises only on connection errors."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def answers(url: str, status: int = 200, timeout: float = 1.0) -> bool:
    """`url` answers `status` now (False when nothing listens)."""
    try:
        return http_get(url, timeout)[0] == status
    except (OSError, ValueError):
        return False


def poll_until(
    check: Callable[[], _T | None],
    *,
    timeout: float,
    interval: float = 0.1,
    message: str = "condition",
    on_timeout: Callable[[], str] | None = None,
) -> _T:
    """Call `check` until it returns a truthy value and return that value; fail after `timeout` s.

    Exceptions from `check` count as "not yet" (the last one is reported on timeout).
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
        except Exception as exc:  # a not-yet-listening server, a half-written file, ...
            last_error = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise ProcessError(
                f"timed out after {timeout:.1f}s waiting for {message}{detail}",
                on_timeout() if on_timeout else "",
            )
        time.sleep(interval)


def descendants(root: int) -> list[int]:
    """PIDs of the processes below `root` (Linux /proc; empty elsewhere), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int(entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        children = parents.get(todo.pop(0), [])
        found.extend(children)
        todo.extend(children)
    return found


@dataclass
class RunningProcess:
    """A child process started by `start_process`; stop it with `stop`."""

    name: str
    args: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path
    base_url: str = ""
    killed: bool = False
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def is_running(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, max_chars: int = 4000) -> str:
        return self.log().replace("\r", "\n")[-max_chars:]

    def stop(
        self,
        sig: signal.Signals = signal.SIGTERM,
        timeout: float = 10.0,
        hurry: Callable[[], bool] | None = None,
    ) -> int:
        """Send `sig` to this PID; SIGKILL it (and its own children first, which would outlive it)
        if it has not exited after `timeout` s or as soon as `hurry()` says so. Returns the exit
        code (negative: killed by that signal). Safe to call twice."""
        if not self._stopped:
            self._stopped = True
            if self.popen.poll() is None:
                self.popen.send_signal(sig)
                deadline = time.monotonic() + timeout
                while self.popen.poll() is None:
                    if time.monotonic() >= deadline or (hurry is not None and hurry()):
                        self.killed = True
                        for pid in descendants(self.pid):
                            with contextlib.suppress(OSError):
                                os.kill(pid, signal.SIGKILL)
                        self.popen.kill()
                        break
                    time.sleep(0.05)
        return int(self.popen.wait())


def _load_prctl() -> Any:
    """libc's prctl on Linux (looked up here, not between fork and exec), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def _die_with_parent() -> None:
    """In the child, before exec (Linux): get SIGTERM when the parent dies, even by SIGKILL."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def start_process(
    name: str,
    args: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    own_session: bool = False,
    die_with_parent: bool = False,
) -> RunningProcess:
    """Start `args` with stdout and stderr going to `log_path` (a file, so no pipe can fill up).

    `own_session`: a terminal's Ctrl-C reaches only the caller, which stops children in order.
    `die_with_parent`: the child gets SIGTERM if the caller dies (use only from a single-threaded
    caller: it runs between fork and exec).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=own_session,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    return RunningProcess(name=name, args=list(args), popen=popen, log_path=log_path)


def wait_for_http(
    url: str,
    *,
    process: RunningProcess | None = None,
    timeout: float = 20.0,
    expect_status: int = 200,
) -> bytes:
    """Poll `url` until it answers `expect_status`; fail early if `process` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and not process.is_running():
            raise ProcessError(
                f"{process.name} (pid {process.pid}) exited with {process.popen.returncode} "
                f"before {url} was ready",
                process.log_tail(),
            )
        try:
            status, body = http_get(url)
        except OSError:  # not listening yet (URLError is an OSError)
            status, body = 0, b""
        if status == expect_status:
            return body
        if time.monotonic() >= deadline:
            raise ProcessError(
                f"{url} did not answer {expect_status} within {timeout:.1f}s",
                process.log_tail() if process else "",
            )
        time.sleep(0.1)


def start_and_wait(
    name: str,
    args: Sequence[str],
    log_path: Path,
    base_url: str,
    ready_path: str,
    timeout: float,
    **options: Any,
) -> RunningProcess:
    """`start_process`, then wait until `base_url + ready_path` answers 200 (stopped on failure)."""
    process = start_process(name, args, log_path, **options)
    process.base_url = base_url
    try:
        wait_for_http(base_url + ready_path, process=process, timeout=timeout)
    except BaseException:
        process.stop()
        raise
    return process
