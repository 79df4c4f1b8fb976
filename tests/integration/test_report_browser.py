"""The demo report in a real browser (Debian's headless Chromium, `make chromium`): it renders with no console
message at all (the page has no script, so any is an error), the chart is parsed as SVG, and a screenshot is kept in
test-artifacts/ for a person to look at."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from driftline.demo.report import Mark, Sample, page

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("DRIFTLINE_TEST_ARTIFACTS") or REPO / "test-artifacts")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As the machine notes advise: no sandbox as root, and nothing that reaches for Google's hosts on a closed network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]  # fmt: skip
WINDOW = (1100, 1000)


def browse(tmp_path: Path, html: Path, *action: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    argv = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}", *action]
    return subprocess.run([*argv, html.as_uri()], capture_output=True, text=True, timeout=120, check=False)


def console(run: subprocess.CompletedProcess[str]) -> list[str]:
    """The page's console messages and uncaught errors, as Chromium logs them (INFO:CONSOLE)."""
    return [line for line in run.stderr.splitlines() if ":CONSOLE" in line]


def report() -> str:
    run = [Sample(t, 0.05, 0.25, 1, "Ok", (("radius", 0.05), ("area", 0.03))) for t in range(0, 60, 2)]
    run += [Sample(t, 8.0, 0.25, 1, "Breach", (("radius", 8.0), ("area", 3.0))) for t in range(60, 70, 2)]
    run += [Sample(t, None, 0.25, 2, "InsufficientSamples") for t in range(70, 80, 2)]
    run += [Sample(t, 0.04, 0.25, 2, "Ok", (("radius", 0.04),)) for t in range(80, 120, 2)]
    marks = [Mark(64, "Rollback v1"), Mark(65, "Retrain v1"), Mark(66, "RollForward v2"), Mark(119, "CanaryStep v3")]
    versions = [("VERSION", "STAGE"), ("1", "RolledBack"), ("2", "Production")]
    history = [("ACTION", "MESSAGE"), ("Rollback", "drift <psi 8.0> above 0.25 & rising")]
    return page("Driftline demo", run, marks, versions, history, dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC))


@pytest.fixture(scope="module")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: make chromium (hack/fetch-chromium.sh) installs Debian's")
    return CHROMIUM


def test_the_console_check_sees_a_pages_errors(chromium: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text("<!doctype html><body><script>console.error('boom'); undefined_call()</script></body>")
    seen = console(browse(tmp_path, broken, "--dump-dom"))
    assert any('"boom"' in line for line in seen) and any("undefined_call" in line for line in seen), seen


def test_the_report_renders_without_a_console_message_and_its_chart_is_svg(chromium: str, tmp_path: Path) -> None:
    html = tmp_path / "demo-report.html"
    html.write_text(report())
    dom = browse(tmp_path, html, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console(dom) == []
    # The browser built the chart as SVG (an HTML parser would have kept unknown tags as text otherwise).
    assert dom.stdout.count("<polyline") >= 3 and "Rollback v1</text>" in dom.stdout
    assert "drift &lt;psi 8.0&gt; above 0.25 &amp; rising" in dom.stdout  # escaped, shown as text

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "demo-report.png"
    shot.unlink(missing_ok=True)
    taken = browse(tmp_path, html, f"--screenshot={shot}")
    assert taken.returncode == 0 and console(taken) == [], taken.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert (width, height) == WINDOW and len(data) > 20_000, (width, height, len(data))  # not a blank page
