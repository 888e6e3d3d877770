"""Issue #22 item 8: `make dev` shut the whole stack when one function died. Now each function
process is started again, as Cloud Functions starts a new instance, and Ctrl-C still stops
everything, the new instances included."""

import json
import os
import signal
import subprocess
import time

import pytest

from local.processes import gcloud_emulators_missing, port_is_open
from local.stack import REPO_ROOT, group_alive
from tests.e2e.helpers import wait_for
from tests.e2e.test_stack import _dev_argv, answers_http, read_events

pytestmark = pytest.mark.e2e


def test_make_dev_restarts_a_killed_function_and_ctrl_c_still_stops_everything(tmp_path):
    reason = gcloud_emulators_missing()
    if reason:
        pytest.skip(f"the local stack needs the gcloud emulators: {reason}")
    state = tmp_path / "state"
    events = tmp_path / "events.jsonl"
    env = {**os.environ, "ECHO_EVENTS_FILE": str(events)}
    output_path = tmp_path / "stack.out"
    output = output_path.open("wb")
    proc = subprocess.Popen(
        _dev_argv(state),
        cwd=REPO_ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def info() -> dict:
        """stack.json, or {} once the stack has gone (it removes the file as it stops)."""
        try:
            return json.loads((state / "stack.json").read_text())
        except FileNotFoundError:
            return {}

    try:
        wait_for(
            lambda: (state / "stack.json").exists() or proc.poll() is not None,
            timeout=90,
            what="stack.json",
        )
        first = info()
        seen = []
        # SIGKILL, as an instance crash: the whole group of on_job_event, then only the
        # gunicorn master of passthrough (its workers must not keep the port).
        for name, whole_group in (("on_job_event", True), ("passthrough", False)):
            pid = first["pids"][name]
            if whole_group:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
            restarted = wait_for(
                lambda name=name, pid=pid: (
                    proc.poll() is not None
                    or (info().get("pids", {}).get(name, pid) != pid and info())
                ),
                timeout=60,
                what=f"{name} restarted",
            )
            assert proc.poll() is None, output_path.read_text()
            new_pid = restarted["pids"][name]
            assert group_alive(new_pid) and not group_alive(pid)
            assert answers_http(first["functions"][name])  # the same port
            seen.append((name, pid, new_pid))

        # The new on_job_event gets the ticks (pushed by the emulator to the same URL).
        count = len(read_events(events, "on_job_event"))
        wait_for(lambda: len(read_events(events, "on_job_event")) > count, what="a new tick")
        text = output_path.read_text()
        for name, _, _ in seen:
            assert f"make dev: {name} (killed by SIGKILL) stopped; starting it again" in text
            assert f"make dev: {name} is back at" in text
            assert "new instance (restart 1)" in (state / "logs" / f"{name}.log").read_text()
        bridges = [json.loads(line) for line in (state / "logs" / "bridges.log").open()]
        assert {e["function"] for e in bridges if e["message"] == "function restarted"} == {
            "on_job_event",
            "passthrough",
        }

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        last = first | {"pids": {**first["pids"], **{n: new for n, _, new in seen}}}
        for name, pid in last["pids"].items():
            deadline = time.monotonic() + 10
            while group_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not group_alive(pid), f"{name} (process group {pid}) survived"
        for name, port in first["ports"].items():
            assert not port_is_open(port), f"{name} still holds port {port}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        output.close()
