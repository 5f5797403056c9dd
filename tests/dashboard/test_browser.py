"""Browser tests: Debian's chromium (Playwright) against a real uvicorn server, a real zarr store,
a LiveState fed by a test thread and a recording ControlSink."""

from __future__ import annotations

import shutil
import threading
import time

import pytest

from robot_stack.dashboard import DashboardConfig, DashboardServer, LiveState, RecordingControlSink, create_app
from robot_stack.store import EpisodeStore

from dash_helpers import ROBOT, TOKEN, frame

pytestmark = [pytest.mark.browser, pytest.mark.processes]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
EID = f"{ROBOT}:000001"


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Feeder(threading.Thread):
    """Plays the ROS side: camera frames at ``fps``, classifier output, session state, learner metrics."""

    def __init__(self, live: LiveState, fps: float = 30.0):
        super().__init__(daemon=True)
        self.live, self.fps, self.stop = live, fps, threading.Event()
        self.objective_changes: list[str] = []  # what a learner resuming another loss's checkpoint sends

    def run(self):
        seq = 0
        while not self.stop.is_set():
            self.live.publish_frame("front", frame(seq), seq=seq)
            self.live.publish_frame("wrist", frame(seq + 100, 32, 32), seq=seq)
            self.live.publish_success("cube_into_bowl", 0.5 + 0.4 * ((seq % 60) / 60), 0.85)
            if seq % 10 == 0:
                self.live.publish_session_state({"task_id": "cube_into_bowl", "phase": "forward", "episode": 12,
                                                 "step": seq, "policy_version": 3, "policy_members": [1, 2, 3], "eval": False,
                                                 "intervening": False, "paused": False, "alert": ""})
                self.live.publish_learner_metrics({"updates": seq * 10, "updates_per_s": 20 + seq % 5,
                                                   "losses/critic": 1.0 / (1 + seq), "losses/actor": 0.5,
                                                   "q/mean": seq * 0.01,
                                                   **({"objective_changes": self.objective_changes} if self.objective_changes else {})})
                self.live.publish_policy_version(3)
            seq += 1
            time.sleep(1.0 / self.fps)


@pytest.fixture
def server(store, tmp_path):
    live, sink = LiveState(), RecordingControlSink()
    app = create_app(DashboardConfig(token=TOKEN), store=store, live=live, control=sink)
    feeder = Feeder(live)
    feeder.start()
    with DashboardServer(app) as srv:
        yield srv, live, sink, store, feeder
    feeder.stop.set()
    feeder.join(2)


def _wait(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_operator_flow_live_view_relabel_segment_teleop_and_estop(browser, server, artifacts_dir):
    srv, live, sink, store, feeder = server
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{srv.url}/#token={TOKEN}")
    assert "#token" not in page.url  # the token leaves the address bar at once

    # --- live view: frames arrive and change, at >= 10 fps per camera
    page.wait_for_function("() => window.__dash && window.__dash.framesDrawn > 4", timeout=10000)
    first = page.eval_on_selector("#cam-front", "c => c.toDataURL()")
    seq0 = int(page.get_attribute("#cam-front", "data-seq"))
    page.wait_for_timeout(2000)
    assert int(page.get_attribute("#cam-front", "data-seq")) > seq0
    assert page.eval_on_selector("#cam-front", "c => c.toDataURL()") != first  # the drawn pixels changed
    rates = page.evaluate("""() => {
        const now = performance.timeOrigin + performance.now(), out = {};
        for (const f of window.__dash.frameLog) if (f.t > now - 1500) out[f.cam] = (out[f.cam] || 0) + 1;
        return out; }""")
    assert rates.get("front", 0) / 1.5 >= 10 and rates.get("wrist", 0) / 1.5 >= 10, rates
    page.wait_for_function("() => document.getElementById('pill-policy').textContent.includes('v3')")
    assert "mean of v1, v2, v3" in page.text_content("#pill-policy")  # an actor acting with its newest three versions
    assert "forward" in page.text_content("#pill-task")
    assert "autonomous" in page.text_content("#pill-intervening")
    assert "threshold 0.85" in page.text_content("#success-now")
    # a learner that resumed a checkpoint trained with another loss says so on the page
    assert "hidden" in page.get_attribute("#pill-objective", "class")
    feeder.objective_changes = ["calql.bc_weight: 30.0 -> 0.0"]
    page.wait_for_function("() => document.getElementById('pill-objective').textContent.includes('bc_weight: 30.0 -> 0.0')")
    assert "warn" in page.get_attribute("#pill-objective", "class")
    feeder.objective_changes = []
    page.wait_for_function("() => document.getElementById('token-state').textContent === 'token ok'")
    page.wait_for_selector("#ep-table tbody tr", timeout=10000)
    page.wait_for_function("() => document.querySelectorAll('#totals .stat').length >= 6")
    page.wait_for_timeout(300)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts_dir / "dashboard_live.png"), full_page=True)

    # --- filter the episode browser
    assert page.locator("#ep-table tbody tr").count() == 6
    page.select_option("#f-outcome", "failure")
    page.wait_for_function("() => document.querySelectorAll('#ep-table tbody tr').length === 2")
    page.select_option("#f-outcome", "")
    page.wait_for_function("() => document.querySelectorAll('#ep-table tbody tr').length === 6")

    # --- play an episode back, scrub, relabel it
    page.click(f"#ep-table tbody tr[data-id='{EID}']")
    page.wait_for_selector("#player:not(.hidden)")
    page.wait_for_function("() => document.getElementById('pl-frame').dataset.step === '0'")
    frame0 = page.eval_on_selector("#pl-frame", "c => c.toDataURL()")
    page.fill("#pl-slider", "9")  # sets the value and fires 'input'
    page.wait_for_function("() => document.getElementById('pl-frame').dataset.step === '9'")
    assert page.eval_on_selector("#pl-frame", "c => c.toDataURL()") != frame0
    assert page.text_content("#pl-step") == "9"
    page.click("#pl-play")  # plays on from step 9 at the recorded 5 Hz and stops at the last step
    page.wait_for_function("() => document.getElementById('pl-step').textContent === '11'", timeout=5000)
    page.wait_for_function("() => document.getElementById('pl-play').textContent.includes('play')")
    box = page.locator("#pl-curve").bounding_box()
    page.click("#pl-curve", position={"x": box["width"] * 0.55, "y": box["height"] / 2})  # seek by clicking the curve
    page.wait_for_function("() => ['5', '6'].includes(document.getElementById('pl-step').textContent)")
    assert store.episode(EID).outcome == "failure"
    page.click("#pl-success")
    _wait(lambda: EpisodeStore.open(store.url).episode(EID).outcome == "success", what="relabel in the store")
    info = EpisodeStore.open(store.url).episode(EID)
    assert info.outcome_source == "human"
    page.wait_for_function("() => document.getElementById('pl-outcome').textContent.startsWith('success (human)')")

    # --- label an intervention segment with a reason
    page.click("#pl-segments li[data-segment='0']")
    assert "segment #0 [3, 7)" in page.text_content("#pl-seg-sel")
    page.select_option("#pl-seg-reason", "about to collide")
    page.click("#pl-seg-save")
    _wait(lambda: EpisodeStore.open(store.url).episode(EID).intervention_segments[0].reason == "about to collide",
          what="segment reason in the store")
    page.wait_for_function("() => document.getElementById('pl-segments').textContent.includes('about to collide')")
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts_dir / "dashboard_episode.png"), full_page=True)

    # --- session control and web teleop (an intervention)
    page.click("#btn-pause")
    _wait(lambda: ("session_command", "pause") in [c[1:] for c in sink.calls], what="pause command")
    page.check("#teleop-arm")
    page.locator("body").focus()
    page.keyboard.down("ArrowUp")
    _wait(lambda: sink.intervening and sink.kinds().count("teleop") >= 2, what="web teleop actions")
    page.wait_for_function("() => document.getElementById('pill-intervening').textContent.includes('INTERVENING')")
    page.keyboard.up("ArrowUp")
    _wait(lambda: not sink.intervening, what="teleop release")
    actions = [v for _, k, v in sink.calls if k == "teleop"]
    assert actions[0][0] > 0 and actions[-1][:6].tolist() == [0] * 6  # drove +x, then stopped

    # --- e-stop reaches the control sink
    page.click("#btn-estop")
    _wait(lambda: "estop" in sink.kinds(), timeout=5, what="e-stop in the control sink")
    page.wait_for_function("() => document.getElementById('pill-estop').textContent.includes('e-stop sent')")
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts_dir / "dashboard_estop.png"))
    assert not errors, errors
    page.close()


def test_page_without_token_is_read_only_and_says_so(browser, server, artifacts_dir):
    srv, live, sink, store, _ = server
    page = browser.new_page()
    page.goto(srv.url + "/")
    page.wait_for_function("() => window.__dash && window.__dash.framesDrawn > 0", timeout=10000)  # reading works locally
    page.wait_for_function("() => document.getElementById('token-state').textContent.includes('read only')")
    page.click("#btn-estop")
    page.wait_for_function("() => document.getElementById('toast').textContent.includes('401')")
    assert "estop" not in sink.kinds()
    page.screenshot(path=str(artifacts_dir / "dashboard_no_token.png"))
    page.close()
