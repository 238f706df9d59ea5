"""Pytest fixtures that run `switchyard sim` and expose each simulated provider's base URL.

Import into a conftest with ``from sim_fixtures import *``.
The binary comes from ``$SWITCHYARD_BIN`` (default: ``<repo>/target/debug/switchyard``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["SimFleet", "SimProvider", "sim_fleet", "clean_sim", "start_sim", "stop_sim", "SIM_PROVIDERS", "SIM_API_KEY"]

REPO_ROOT = Path(__file__).resolve().parents[2]
SIM_API_KEY = "sim-test-key"
# name -> protocol; the name appears in every reply ("{name} says: ...").
SIM_PROVIDERS = {
    "oa": "openai",
    "az": "azure_openai",
    "vl": "openai_compatible",
    "an": "anthropic",
    "br": "bedrock",
    "ge": "gemini",
    "vx": "vertex",
}


def sim_binary() -> list[str]:
    """The command that runs the simulator (``switchyard sim``)."""
    return [os.environ.get("SWITCHYARD_BIN", str(REPO_ROOT / "target" / "debug" / "switchyard")), "sim"]


@dataclass
class SimProvider:
    """One simulated provider: its name, protocol and base URL, plus control-API helpers."""

    name: str
    protocol: str
    base_url: str

    def _call(self, method: str, path: str, body: dict | None = None) -> dict | None:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def set_faults(self, **faults) -> None:
        """Replaces the provider's faults (see crates/sim/README.md for the fields)."""
        self._call("POST", "/_sim/faults", faults)

    def clear_faults(self) -> None:
        self._call("DELETE", "/_sim/faults")

    def stats(self) -> dict:
        return self._call("GET", "/_sim/stats") or {}

    def reset_stats(self) -> None:
        self._call("POST", "/_sim/stats/reset")


class SimFleet(dict):
    """Simulated providers by name; ``.process`` is the running ``switchyard sim``."""

    process: subprocess.Popen


def start_sim(providers: dict[str, str], api_key: str | None = SIM_API_KEY) -> SimFleet:
    """Starts ``switchyard sim`` on port 0 for each provider and reads the JSON lines it prints."""
    cmd = sim_binary()
    for name, protocol in providers.items():
        cmd += ["--provider", f"{name}={protocol}@127.0.0.1:0"]
    if api_key is not None:
        cmd += ["--api-key", api_key]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True)
    fleet = SimFleet()
    fleet.process = proc
    try:
        for _ in providers:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line:
                raise RuntimeError(f"switchyard sim exited early (code {proc.poll()})")
            info = json.loads(line)
            fleet[info["name"]] = SimProvider(info["name"], info["protocol"], info["base_url"])
    except BaseException:
        stop_sim(fleet)
        raise
    return fleet


def stop_sim(fleet: SimFleet) -> None:
    """Stops the simulator by its PID (SIGTERM, then SIGKILL)."""
    proc = fleet.process
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def sim_fleet():
    """One simulator process for the session, serving every protocol with ``SIM_API_KEY``."""
    fleet = start_sim(SIM_PROVIDERS)
    yield fleet
    stop_sim(fleet)


@pytest.fixture(autouse=False)
def clean_sim(sim_fleet):
    """Clears faults and counters on every simulated provider before a test."""
    for p in sim_fleet.values():
        p.clear_faults()
        p.reset_stats()
    return sim_fleet
