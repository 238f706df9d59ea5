"""Runs the real `switchyard serve` binary on a free port for end-to-end tests."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["Gateway", "start_gateway", "GATEWAY_KEY", "switchyard_binary"]

REPO_ROOT = Path(__file__).resolve().parents[2]
GATEWAY_KEY = "sk-gateway-test"


def switchyard_binary() -> str:
    return os.environ.get("SWITCHYARD_BIN", str(REPO_ROOT / "target" / "debug" / "switchyard"))


class Gateway:
    """A running gateway: ``url`` is ``http://127.0.0.1:PORT``; logs are kept for failures."""

    def __init__(self, config: str):
        self._dir = tempfile.TemporaryDirectory(prefix="switchyard-test-")
        self.config_path = Path(self._dir.name) / "switchyard.toml"
        self.config_path.write_text(config)
        self.process = subprocess.Popen(
            [switchyard_binary(), "--log-format", "json", "serve", "--listen", "127.0.0.1:0",
             "--config", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.logs: list[str] = []
        self._events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read_logs, daemon=True).start()
        listening = self.wait_for_log("switchyard is listening")
        self.url = "http://" + listening["fields"]["local"]

    def _read_logs(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.logs.append(line.rstrip())
            try:
                self._events.put(json.loads(line))
            except json.JSONDecodeError:
                pass
        self._events.put(None)

    def wait_for_log(self, message: str, timeout: float = 30.0) -> dict:
        """Blocks until the gateway logs ``message`` (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                event = self._events.get(timeout=max(left, 0.001))
            except queue.Empty:
                event = None
            if event is None:
                raise AssertionError(f"gateway never logged {message!r}; logs:\n" + "\n".join(self.logs))
            if message in event.get("fields", {}).get("message", ""):
                return event

    def stop(self) -> int:
        """SIGTERM, then wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._dir.cleanup()
        return self.process.returncode


def start_gateway(config: str) -> Gateway:
    return Gateway(config)
