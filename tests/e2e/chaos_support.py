"""What the kill tests need beside the stack: a gate in front of Pub/Sub, kills, alert reads.

`GateProxy` is a TCP proxy the functions of a chaos stack reach Pub/Sub through (their
`PUBSUB_EMULATOR_HOST`; the emulator's pushes and the sync ticker go direct). `hold()` stops
forwarding, so a publish stays in flight for as long as a test needs (a function killed
then dies between its claim and its publish, every time); `sever()` drops every connection
and what it held (the publish never reached Pub/Sub); `release()` forwards again.
"""

import contextlib
import json
import os
import signal
import socket
import threading
import time

from google.api_core import exceptions


class GateProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._connections: list[tuple[socket.socket, socket.socket]] = []
        self._severed = 0
        threading.Thread(target=self._accept, daemon=True, name="gate-accept").start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def sever(self) -> None:
        """Close every connection; what was held is dropped, never forwarded."""
        with self._lock:
            self._severed += 1
            connections, self._connections = self._connections, []
        for pair in connections:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def stop(self) -> None:
        self._stop.set()
        self._open.set()
        self.sever()
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections.append((client, upstream))
                generation = self._severed
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, target, generation), daemon=True
                ).start()

    def _pump(self, source: socket.socket, target: socket.socket, generation: int) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while not self._open.wait(0.05):
                    if self._stop.is_set():
                        return
                if self._severed != generation:
                    return  # severed while held: dropped
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def kill(stack, name: str) -> int:
    """SIGKILL the whole process group of one function of `stack` (an instance crash)."""
    pid = stack.servers[name].process.pid
    os.killpg(pid, signal.SIGKILL)
    return pid


def wait_back(stack, name: str, old_pid: int, timeout: float = 60.0) -> None:
    """Until the function answers again from a new process: the stack's supervisor starts
    it (a stack without one: this test does, so that what is measured is what comes after)."""
    if getattr(stack, "supervisor", None) is None:
        server = stack.servers[name]
        while server.process.poll() is None:
            time.sleep(0.05)
        server.start().wait_ready(timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = stack.servers[name]
        if server.process and server.process.pid != old_pid and server.process.poll() is None:
            with contextlib.suppress(Exception):
                server.wait_ready(timeout=1)
                return
        time.sleep(0.1)
    raise AssertionError(f"{name} was not started again within {timeout}s")


def drain(subscriber, subscription: str) -> list[dict]:
    """Every alert waiting now: attributes, body and Pub/Sub's publish time, acknowledged."""
    found = []
    while True:
        try:
            response = subscriber.pull(
                subscription=subscription, max_messages=100, return_immediately=True, timeout=5
            )
        except exceptions.DeadlineExceeded:
            continue
        messages = response.received_messages
        if not messages:
            return found
        subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in messages])
        for m in messages:
            found.append(
                {
                    "attributes": dict(m.message.attributes),
                    "data": bytes(m.message.data),
                    "body": json.loads(m.message.data),
                    "published": m.message.publish_time.timestamp(),
                    "message_id": m.message.message_id,
                }
            )


def predictions(record: dict) -> bytes:
    """The predictions file Vertex wrote for a job: under its output directory, or, when the
    record has none yet, under the per-job folder Vertex writes into (sealed outputs)."""
    from shared.core import clients

    folder_uri = record.get("output_directory") or record["output_prefix"]
    bucket, _, folder = folder_uri.removeprefix("gs://").partition("/")
    [blob] = [
        b
        for b in clients.storage().list_blobs(bucket, prefix=folder.rstrip("/") + "/")
        if b.name.endswith("/predictions.jsonl")
    ]
    return blob.download_as_bytes()
