"""Service processes for the integration tests and benches: started as ``twinwatch stack`` starts them,
with their output in a log file, and stopped for sure (a kill when SIGTERM is not enough)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from twinwatch.stack import service_command

ROOT = Path(__file__).resolve().parents[2]


def start_service(name: str, env: dict[str, str], folder: Path, log_name: str | None = None
                  ) -> tuple[subprocess.Popen, Path]:
    """``name`` (windower, trainer, evaluator) with its data under ``folder``, logging to <log_name>.log."""
    log = folder / f"{log_name or name}.log"
    process = subprocess.Popen(service_command(name, folder), cwd=ROOT, env=env, stdout=open(log, "w"),
                               stderr=subprocess.STDOUT)
    return process, log


def wait_until_ready(process: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    """Until the Faust worker says it is ready; it must not die meanwhile."""
    deadline = time.monotonic() + timeout
    while "Worker]: Ready" not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
