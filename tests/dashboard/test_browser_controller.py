"""Browser -> dashboard node -> DDS -> controller node: e-stop latches the real (sim) controller,
and the sim-only scene reset re-stages its world.

Three real processes (controller, camera, dashboard) on an isolated DDS domain; Debian's chromium
driven by Playwright presses the page's buttons; the controller's own arm/status comes back to
the page.
"""

from __future__ import annotations

import os
import time

import httpx
import pytest

from robot_stack.runtime.process import start_node, stop_process
from robot_stack.session.runner import free_port

pytestmark = [pytest.mark.browser, pytest.mark.processes]
TOKEN = "browser-estop-token-123456"


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_estop_button_latches_the_controller_clear_needs_the_token_and_the_scene_resets(dds_env, tmp_path, artifacts_dir):
    from test_browser import CHROMIUM, CHROMIUM_ARGS

    env = {**dds_env, "ROBOT_STACK_DASHBOARD_TOKEN": TOKEN}
    port = free_port()
    logs = {n: open(tmp_path / f"{n}.log", "w") for n in ("controller", "camera", "dashboard")}
    procs = [
        start_node("controller", env=env, params={"control_hz": 10.0}, stdout=logs["controller"], stderr=logs["controller"]),
        start_node("camera", env=env, params={"width": 64, "height": 64}, stdout=logs["camera"], stderr=logs["camera"]),
        start_node("dashboard", env=env, params={"dashboard.port": port}, stdout=logs["dashboard"], stderr=logs["dashboard"]),
    ]
    url = f"http://127.0.0.1:{port}/"
    try:
        live = lambda: httpx.get(url + "api/live", timeout=2).json()  # noqa: E731
        estopped = lambda: str(live().get("arm_status", {}).get("estopped")).lower()  # noqa: E731
        wait(lambda: estopped() == "false", 60, "the controller's status on the dashboard")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(url + f"#token={TOKEN}")
            page.wait_for_function("() => document.getElementById('pill-estop').textContent.includes('arm ok')", timeout=20000)
            page.click("#btn-estop")
            page.wait_for_function("() => document.getElementById('pill-estop').textContent.includes('E-STOPPED')", timeout=10000)
            assert estopped() == "true"
            page.screenshot(path=str(artifacts_dir / "estop_latched.png"))
            time.sleep(1.0)  # the latch holds: nothing clears it by itself
            assert estopped() == "true"
            page.click("#btn-estop-clear")
            page.wait_for_function("() => document.getElementById('pill-estop').textContent.includes('arm ok')", timeout=10000)
            # A simulated arm: the page offers the scene reset a person would do after an alert.
            frame = lambda: httpx.get(url + "api/cameras/front/latest.jpg", timeout=2).content  # noqa: E731
            before = frame()
            time.sleep(0.5)
            assert frame() == before, "nothing moves while the arm holds"
            page.click("#btn-reset-scene")
            # as a person would: the object re-placed, the room (bowl, lighting) kept
            wait(lambda: "(layout kept)" in (tmp_path / "controller.log").read_text(), 10, "the controller's scene reset")
            wait(lambda: frame() != before, 10, "a frame of the re-staged scene")
            browser.close()
        assert httpx.post(url + "api/estop/clear", timeout=5).status_code == 401
        assert httpx.post(url + "api/sim/reset_scene", json={}, timeout=5).status_code == 401
    finally:
        codes = [stop_process(p) for p in procs]
        for f in logs.values():
            f.close()
    assert codes == [0, 0, 0], {n: (tmp_path / f"{n}.log").read_text()[-2000:] for n in logs}
