"""The server as a real process: refusing an artifact whose digest is wrong, and a graceful SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from driftline_runtime.server import main
from tests.unit.runtime.server_kit import metric_lines, reference_data, write_model_dir

pytestmark = pytest.mark.unit


def serve_command(model_dir: Path, sha: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "driftline_runtime.cli", "serve",
        "--model-dir", str(model_dir), "--model-name", "iris", "--model-version", "1", "--expected-sha256", sha,
        *extra,
    ]  # fmt: skip


def test_sha256_mismatch_refuses_to_start_with_exit_1_and_a_termination_message(tmp_path: Path) -> None:
    sha = write_model_dir(tmp_path / "model")
    wrong = ("0" if sha[0] != "0" else "1") + sha[1:]
    log = tmp_path / "termination-log"
    out = subprocess.run(
        serve_command(tmp_path / "model", wrong, "--port", "0", "--termination-log", str(log)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    assert "refusing to start" in out.stderr and "sha256 mismatch" in out.stderr
    message = log.read_text()
    assert f"expected {wrong}, found {sha}" in message


@pytest.mark.parametrize(
    ("break_it", "says"),
    [
        (lambda d: (d / "model.joblib").unlink(), "model.joblib is missing"),
        (lambda d: (d / "metadata.json").unlink(), "metadata.json is missing"),
        (lambda d: (d / "profile.json").unlink(), "profile.json is missing"),
        (lambda d: (d / "profile.json").write_text("{"), "profile.json is not readable JSON"),
        (lambda d: (d / "metadata.json").write_text('{"artifact": {"file": "../x"}}'), "plain file name"),
    ],
    ids=["no-artifact", "no-metadata", "no-profile", "bad-profile", "path-escape"],
)
def test_missing_or_broken_files_refuse_to_start(tmp_path: Path, break_it: object, says: str) -> None:
    sha = write_model_dir(tmp_path / "model")
    break_it(tmp_path / "model")  # type: ignore[operator]
    log = tmp_path / "termination-log"
    argv = serve_command(tmp_path / "model", sha, "--termination-log", str(log))[4:]
    assert main(argv) == 1
    assert says in log.read_text()


def test_termination_log_is_skipped_when_its_directory_does_not_exist(tmp_path: Path) -> None:
    write_model_dir(tmp_path / "model")
    argv = serve_command(tmp_path / "model", "f" * 64, "--termination-log", str(tmp_path / "no" / "log"))[4:]
    assert main(argv) == 1
    assert not (tmp_path / "no").exists()


def wait_for_address(proc: subprocess.Popen[str], lines: list[str]) -> str:
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True).start()  # type: ignore[arg-type]
            return found.group(1).replace("0.0.0.0", "127.0.0.1")
    raise AssertionError("server exited before listening:\n" + "".join(lines))


def test_sigterm_turns_unready_finishes_in_flight_requests_and_exits_0(tmp_path: Path) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    # Brute-force k-NN over 8000 points makes each 20000-row request take a noticeable while.
    sha = write_model_dir(tmp_path, estimator=KNeighborsClassifier(algorithm="brute"), rows=8000)
    proc = subprocess.Popen(
        serve_command(tmp_path, sha, "--host", "127.0.0.1", "--port", "0", "--drain-seconds", "1"),
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        url = wait_for_address(proc, lines)
        batches = [reference_data(20000, seed=s).tolist() for s in range(4)]

        def call(rows: list[list[float]]) -> requests.Response:
            return requests.post(f"{url}/v1/models/iris:predict", json={"instances": rows}, timeout=120)

        with ThreadPoolExecutor(len(batches)) as pool:
            futures = [pool.submit(call, b) for b in batches]
            deadline = time.monotonic() + 60
            in_flight = 0.0
            while in_flight < 1 and time.monotonic() < deadline:
                text = requests.get(f"{url}/metrics", timeout=30).text
                in_flight = sum(metric_lines(text, "driftline_inference_requests_in_flight").values())
            assert in_flight >= 1, "no request reached the server"
            proc.send_signal(signal.SIGTERM)
            ready = requests.get(f"{url}/v2/health/ready", timeout=30)
            assert ready.status_code == 503 and ready.json() == {"ready": False}
            responses = [f.result() for f in futures]
        assert [r.status_code for r in responses] == [200] * len(batches)
        assert all(len(r.json()["predictions"]) == 20000 for r in responses)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = "".join(lines)
    assert "shutting down: readiness is false" in log and "stopped" in log
