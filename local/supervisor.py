"""Keep the local functions running: a function process that dies is started again.

Cloud Functions (Cloud Run underneath) replaces an instance that crashes: the next request or
event goes to a new instance, and the request the dead one held fails (Pub/Sub and Eventarc
redeliver it). `make dev` used to stop the whole stack when one function died; now the
`Supervisor` notices the exit (it polls every `interval` seconds), stops what is left of the
process group (gunicorn workers may outlive their master by a moment), waits for the port to
be free, starts the same command on the same port and waits until it answers HTTP again.
Each restart is announced on stderr, written as a JSON line to the stack's `bridges.log`
(component `supervisor`) and appended to the function's own log, so that its log shows
where one instance ended and the next began.

A function that keeps dying right after it starts (a crash loop: a broken import, a port
taken) is restarted after a growing pause (`first_backoff` doubling up to `max_backoff`), as
Cloud Run backs off crash-looping containers; a run of `stable_after` seconds resets it.
Only the functions are supervised: the emulators and the simulator hold the stack's state in
memory, so their death still stops `make dev` (local/stack.py).
"""

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from local.processes import Server, group_alive, port_is_open


@dataclass(frozen=True)
class Restart:
    """One restart: which function, how its last instance ended, the new process."""

    name: str
    exit_code: int | None
    ended: str
    old_pid: int
    new_pid: int | None
    seconds: float
    number: int


def how_it_ended(returncode: int | None) -> str:
    """`exit code 3`, `killed by SIGKILL`: what a person reads in the log."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def backoff_seconds(quick_exits: int, first: float, most: float) -> float:
    """The pause before the next start after `quick_exits` deaths in a row soon after a
    start: none after the first, then `first`, doubling, at most `most`."""
    if quick_exits <= 1:
        return 0.0
    return min(most, first * 2 ** (quick_exits - 2))


class Supervisor:
    """Watches `servers` (name -> Server) from a daemon thread; `stop()` before stopping them."""

    def __init__(
        self,
        servers: dict[str, Server],
        *,
        log: Callable[..., None] | None = None,
        announce: Callable[[str], None] | None = None,
        on_restart: Callable[[Restart], None] | None = None,
        interval: float = 0.2,
        ready_timeout: float = 60.0,
        stable_after: float = 10.0,
        first_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ):
        self.servers = servers
        self.log = log or (lambda *_args, **_fields: None)
        self.announce = announce or (lambda _text: None)
        self.on_restart = on_restart
        self.interval = interval
        self.ready_timeout = ready_timeout
        self.stable_after = stable_after
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.restarts: list[Restart] = []
        self._quick_exits = dict.fromkeys(servers, 0)
        self._attempts = dict.fromkeys(servers, 0)
        self._started = {name: time.monotonic() for name in servers}
        self._stop = threading.Event()
        self._starting = threading.Lock()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def start(self) -> "Supervisor":
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """No restart after this returns (one being started finishes starting first)."""
        self._stop.set()
        with self._starting:
            pass
        if self._thread:
            self._thread.join(timeout=5)

    def wait_restarted(self, name: str, count: int = 1, timeout: float = 60.0) -> Restart:
        """The `count`-th restart of `name` once its new process answers HTTP."""
        with self._changed:
            done = self._changed.wait_for(
                lambda: len([r for r in self.restarts if r.name == name]) >= count,
                timeout=timeout,
            )
        if not done:
            raise TimeoutError(f"{name} was not restarted {count} time(s) within {timeout}s")
        return [r for r in self.restarts if r.name == name][count - 1]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name, server in self.servers.items():
                if self._stop.is_set():
                    return
                process = server.process
                if process is not None and process.poll() is not None:
                    self._restart(name, server)

    def _restart(self, name: str, server: Server) -> None:
        process = server.process
        assert process is not None
        began = time.monotonic()
        ended = how_it_ended(process.returncode)
        ran = began - self._started[name]
        self._quick_exits[name] = self._quick_exits[name] + 1 if ran < self.stable_after else 1
        self._attempts[name] += 1
        number = self._attempts[name]
        pause = backoff_seconds(self._quick_exits[name], self.first_backoff, self.max_backoff)
        self.announce(
            f"make dev: {name} ({ended}) stopped; starting it again, as Cloud Functions starts "
            f"a new instance (restart {number}"
            + (f", after {pause:.1f}s: it keeps dying" if pause else "")
            + f"; log {server.log_path})"
        )
        self.log(
            "WARNING",
            "function died; restarting it",
            function=name,
            ended=ended,
            pid=process.pid,
            restart=number,
            backoff_seconds=pause,
        )
        _finish_group(process.pid, server.port)
        if self._stop.wait(pause):
            return
        with self._starting:
            if self._stop.is_set():
                return
            _note(server, f"--- local stack: {name} {ended}; new instance (restart {number}) ---")
            server.start()
        self._started[name] = time.monotonic()
        new_pid = server.process.pid if server.process else None
        if not self._wait_ready(server):
            self.log("ERROR", "restarted function did not answer", function=name, pid=new_pid)
            return
        seconds = round(time.monotonic() - began, 2)
        restart = Restart(name, process.returncode, ended, process.pid, new_pid, seconds, number)
        self.log(
            "WARNING",
            "function restarted",
            function=name,
            ended=ended,
            old_pid=process.pid,
            new_pid=new_pid,
            seconds=seconds,
            restart=number,
        )
        self.announce(f"make dev: {name} is back at {server.url} (pid {new_pid}) after {seconds}s")
        if self.on_restart:
            self.on_restart(restart)
        with self._changed:
            self.restarts.append(restart)
            self._changed.notify_all()

    def _wait_ready(self, server: Server) -> bool:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline and not self._stop.is_set():
            if server.process and server.process.poll() is not None:
                return False  # died again while starting: the next poll restarts it
            with contextlib.suppress(Exception):
                server.wait_ready(timeout=1)
                return True
        return False


def _finish_group(pgid: int, port: int, timeout: float = 10.0) -> None:
    """SIGKILL what is left of the dead instance's process group; wait for its port."""
    deadline = time.monotonic() + timeout
    while (group_alive(pgid) or port_is_open(port)) and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        time.sleep(0.05)


def _note(server: Server, line: str) -> None:
    if server.log_path:
        with contextlib.suppress(OSError), open(server.log_path, "a") as handle:
            handle.write(line + "\n")
