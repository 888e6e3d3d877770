"""The supervisor of `make dev` (local/supervisor.py) on real processes: a killed server comes
back on its port, a crash-looping one is restarted ever more slowly, and `stop` ends it."""

import os
import signal
import sys
import time

from local.processes import Server, free_port, group_alive
from local.supervisor import Supervisor, backoff_seconds, how_it_ended


def _http_server(tmp_path, name: str = "web") -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    return Server(name, argv, port, log_path=tmp_path / f"{name}.log").start().wait_ready()


def test_a_killed_server_is_started_again_on_its_port_and_the_logs_say_so(tmp_path):
    server = _http_server(tmp_path)
    lines, notes = [], []
    supervisor = Supervisor(
        {"web": server}, log=lambda *a, **f: lines.append((a, f)), announce=notes.append
    ).start()
    try:
        old = server.process.pid
        os.killpg(old, signal.SIGKILL)
        restart = supervisor.wait_restarted("web", timeout=30)
        assert restart.old_pid == old and restart.new_pid == server.process.pid != old
        assert restart.ended == "killed by SIGKILL" and restart.number == 1
        server.wait_ready(timeout=1)  # answers HTTP on the same port
        assert not group_alive(old)
        assert any("starting it again" in n and "restart 1" in n for n in notes)
        assert any("is back at" in n for n in notes)
        assert [a[1] for a, _ in lines] == ["function died; restarting it", "function restarted"]
        assert "new instance (restart 1)" in (tmp_path / "web.log").read_text()
    finally:
        supervisor.stop()
        server.stop()


def test_a_crash_loop_is_restarted_after_growing_pauses_and_stop_ends_it(tmp_path):
    port = free_port()
    looping = Server("loop", [sys.executable, "-c", "raise SystemExit(3)"], port).start()
    notes = []
    supervisor = Supervisor(
        {"loop": looping}, announce=notes.append, first_backoff=0.4, ready_timeout=2
    ).start()
    time.sleep(2.5)
    supervisor.stop()
    deaths = [n for n in notes if "starting it again" in n]
    # The first restart at once, then after 0.4 s, 0.8 s, 1.6 s: about four deaths in 2.5 s.
    assert 3 <= len(deaths) <= 5, deaths
    assert "exit code 3" in deaths[0] and "keeps dying" not in deaths[0]
    assert "(restart 2, after 0.4s: it keeps dying" in deaths[1]
    assert "(restart 3, after 0.8s: it keeps dying" in deaths[2]
    count = len(notes)
    time.sleep(1)
    assert len(notes) == count  # stopped: nothing restarts any more
    looping.stop()


def test_how_an_instance_ended_and_the_backoff_in_words_and_seconds():
    assert how_it_ended(-9) == "killed by SIGKILL"
    assert how_it_ended(3) == "exit code 3"
    assert how_it_ended(None) == "still running"
    assert [backoff_seconds(n, 0.5, 4) for n in range(1, 8)] == [0, 0.5, 1, 2, 4, 4, 4]
