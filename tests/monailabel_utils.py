"""Start and stop a real MONAI Label server (``monailabel start_server``) for the app's tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def monailabel_command() -> list[str]:
    """The ``monailabel`` console script of this interpreter's environment (or ``python -m monailabel.main``)."""
    script = Path(sys.executable).parent / "monailabel"
    if script.is_file():
        return [str(script)]
    found = shutil.which("monailabel")
    return [found] if found else [sys.executable, "-m", "monailabel.main"]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path
    app: Path
    studies: Path
    bundle: Path

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def wait_until_answering(process: subprocess.Popen, url: str, codes, timeout_s: float, what: str, log_tail,
                         stop, poll_s: float = 0.5) -> None:
    """Wait until ``GET url`` answers one of ``codes``. RuntimeError (with the log's tail) when the
    process exits first; after ``timeout_s``, ``stop()`` and TimeoutError."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}:\n{log_tail()}")
        try:
            if requests.get(url, timeout=5).status_code in codes:
                return
        except requests.RequestException:
            pass
        time.sleep(poll_s)
    stop()
    raise TimeoutError(f"{what} did not answer within {timeout_s:.0f} s:\n{log_tail()}")


def start_server(app: Path, studies: Path, conf: dict[str, str], log: Path, env: dict[str, str] | None = None,
                 timeout_s: float = 240.0, ready_path: str = "/info/") -> Server:
    """Start ``monailabel start_server`` on a free loopback port and wait until ``GET <ready_path>`` answers 200."""
    port = free_port()
    cmd = monailabel_command() + ["start_server", "--app", str(app), "--studies", str(studies),
                                  "--host", HOST, "--port", str(port)]
    for key, value in conf.items():
        cmd += ["--conf", key, str(value)]
    full_env = {**os.environ, **(env or {})}
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=str(app.parent),
                                   start_new_session=True)
    server = Server(f"http://{HOST}:{port}", process, log, app, studies, Path(conf.get("bundle_path", "")))
    wait_until_answering(process, f"{server.url}{ready_path}", (200,), timeout_s, "the server", server.log_tail,
                         stop=lambda: stop_server(server))
    return server


def stop_server(server: Server, grace_s: float = 20.0) -> None:
    """Stop the server and the task processes it started (its own process group)."""
    stop_process_group(server.process, grace_s)


def stop_process_group(process: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM a process started with ``start_new_session=True`` and its group; SIGKILL what is left."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:  # background task processes share the group: make sure none outlives the test
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
