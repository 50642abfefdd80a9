"""The app under `streamlit run` on a free port, for the benchmarks that drive it in a browser and
for the browser tests: start it, wait until it answers, stop it. One place for all of them."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, Iterator

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["ROOT", "free_port", "serve", "start", "stop", "wait_healthy"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until the server answers ``/_stcore/health``; RuntimeError if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"streamlit did not answer /_stcore/health within {timeout:g} s")


def start(log: IO, *, script: str | os.PathLike = "app/Home.py", env: dict | None = None,
          timeout: float = 60) -> tuple[subprocess.Popen, int]:
    """``streamlit run script`` (headless, no usage stats) on a free port, output to ``log``, with
    ``env`` added to this process's environment; (process, port) once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, **(env or {})))
    try:
        wait_healthy(port, proc, timeout)
    except BaseException:
        stop(proc)
        raise
    return proc, port


def stop(proc: subprocess.Popen, log: IO | None = None) -> None:
    """Terminate the server (kill it after 10 s) and close its log."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    if log is not None:
        log.close()


@contextlib.contextmanager
def serve(log: IO, **kw) -> Iterator[tuple[subprocess.Popen, int]]:
    """:func:`start` as a context: (process, port) inside, stopped (and ``log`` closed) after."""
    proc, port = start(log, **kw)
    try:
        yield proc, port
    finally:
        stop(proc, log)
