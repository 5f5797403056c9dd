"""API tests of the dashboard app against a real zarr episode store (FastAPI TestClient)."""

from __future__ import annotations

import hashlib
import io
import json
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from robot_stack.dashboard import DashboardConfig, LiveState, create_app
from robot_stack.store import EpisodeStore

from dash_helpers import AUTH, ROBOT, TOKEN, frame

LOCAL = ("127.0.0.1", 50000)
REMOTE = ("192.168.1.50", 50000)
EID = f"{ROBOT}:000001"  # backward, failure (classifier), intervention segment [3, 7)


@pytest.fixture
def client(app):
    with TestClient(app, client=LOCAL) as c:
        yield c


@pytest.fixture
def remote(app):
    with TestClient(app, client=REMOTE) as c:
        yield c


# ------------------------------------------------------------------------------ page, static, hosts
def test_index_and_static_files_are_served_with_security_headers(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<canvas" in r.text and "/static/app.js" in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    for name, ctype in (("app.js", "text/javascript"), ("charts.js", "text/javascript"), ("style.css", "text/css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(ctype), name
    # Nothing from a CDN: every script/style the page loads is ours.
    assert "http" not in client.get("/").text.split("<body>")[0]


@pytest.mark.parametrize("path", [
    "/static/../cli.py", "/static/..%2Fcli.py", "/static/%2e%2e%2fapp.py", "/static/..%2F..%2F..%2Fetc%2Fpasswd",
    "/static/nonexistent.js", "/static/", "/static/app.py", "/static/__init__.py", "/static/.%2F..%2Fconfig.py",
])
def test_static_path_traversal_is_impossible(client, path):
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert "import" not in r.text  # no Python source ever comes back


def test_unknown_host_header_is_refused(app):
    with TestClient(app, client=LOCAL, base_url="http://evil.example") as c:
        assert c.get("/api/health").status_code == 400


def test_docs_pages_that_need_a_cdn_are_off_but_openapi_lists_every_endpoint(client):
    assert client.get("/docs").status_code == 404
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    for p in ["/api/health", "/api/auth/check", "/api/live", "/api/live/success", "/api/cameras/{camera}/latest.jpg",
              "/api/stats/learning", "/api/learner/history", "/api/episodes", "/api/episodes/{episode_id}",
              "/api/episodes/{episode_id}/frames/{camera}/{step}", "/api/episodes/{episode_id}/label",
              "/api/episodes/{episode_id}/interventions/{segment}", "/api/session/command", "/api/estop",
              "/api/estop/clear", "/api/sim/reset_scene", "/api/teleop", "/api/teleop/release"]:
        assert p in paths, p
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert "LabelRequest" in spec["components"]["schemas"]


# ------------------------------------------------------------------------------ auth
def test_health_and_auth_check(client, remote):
    h = client.get("/api/health").json()
    assert h == {**h, "ok": True, "store": True, "robot": True, "public_read": False, "auth_required_for_read": False}
    assert remote.get("/api/health").json()["auth_required_for_read"] is True
    assert client.get("/api/auth/check").json() == {"valid": False}
    assert client.get("/api/auth/check", headers={"Authorization": "Bearer wrong-token-xxxxxxxxxxxx"}).json() == {"valid": False}
    assert client.get("/api/auth/check", headers=AUTH).json() == {"valid": True}
    assert client.get("/api/auth/check", headers={"X-Robot-Stack-Token": TOKEN}).json() == {"valid": True}


@pytest.mark.parametrize("method,path,body", [
    ("post", f"/api/episodes/{EID}/label", {"outcome": "success"}),
    ("post", f"/api/episodes/{EID}/interventions/0", {"reason": "stuck"}),
    ("post", "/api/session/command", {"cmd": "start"}),
    ("post", "/api/estop", None),
    ("post", "/api/estop/clear", None),
    ("post", "/api/sim/reset_scene", {}),
    ("post", "/api/teleop", {"action": [0, 0, 0, 0, 0, 0, 1]}),
    ("post", "/api/teleop/release", None),
])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-the-token-123456"}, {"Authorization": TOKEN},
                                     {"Authorization": "Basic " + TOKEN}, {"X-Robot-Stack-Token": TOKEN + "x"}])
def test_every_write_needs_the_token_even_from_localhost(client, sink, store, method, path, body, headers):
    r = getattr(client, method)(path, json=body, headers=headers)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert sink.calls == []
    assert store.episode(EID).outcome == "failure"  # unchanged


@pytest.mark.parametrize("path", ["/api/live", "/api/live/success", "/api/episodes", f"/api/episodes/{EID}",
                                  f"/api/episodes/{EID}/frames/front/0", "/api/stats/learning", "/api/learner/history"])
def test_reads_from_other_machines_need_the_token_unless_public_read(app, remote, config, store, path):
    assert remote.get(path).status_code == 401
    assert remote.get(path, headers=AUTH).status_code == 200
    public = create_app(DashboardConfig(**{**config.__dict__, "public_read": True}), store=store)
    with TestClient(public, client=REMOTE) as c:
        assert c.get(path).status_code == 200
        assert c.post("/api/estop").status_code == 401  # writes still need it


# ------------------------------------------------------------------------------ live
def test_live_snapshot_reflects_published_topics(client, live):
    live.publish_session_state({"task_id": "cube_into_bowl", "phase": "backward", "episode": 7, "step": 3,
                                "policy_version": 2, "eval": False, "intervening": False, "paused": False, "alert": ""})
    live.publish_policy_version(5)
    live.publish_intervening(True)
    live.publish_success_array("cube_into_bowl", [0.7, 0.85, 0.0, 3.0])
    live.publish_learner_metrics({"updates": 100, "updates_per_s": 12.5, "losses/critic": 0.3, "q/mean": float("nan")})
    live.publish_arm_status({"estopped": False, "connected": True})
    live.publish_session_event({"event": "episode_committed", "episode_id": "widowx-1:000007"})
    s = client.get("/api/live").json()
    assert s["session"]["phase"] == "backward" and s["session"]["episode"] == 7
    assert s["policy_version"] == 2 and s["learner_policy_version"] == 5 and s["intervening"] is True
    assert s["success"]["prob"] == pytest.approx(0.7) and s["success"]["threshold"] == pytest.approx(0.85)
    assert s["success"]["decision"] is False and s["success"]["task_id"] == "cube_into_bowl"
    assert s["learner"]["updates_per_s"] == 12.5 and s["learner"]["q/mean"] is None  # NaN -> null, never a 500
    assert s["events"][-1]["event"] == "episode_committed"
    hist = client.get("/api/live/success").json()["points"]
    assert hist[-1][1:] == [pytest.approx(0.7), pytest.approx(0.85), "cube_into_bowl"]
    lh = client.get("/api/learner/history").json()
    assert "losses/critic" in lh["keys"] and lh["points"][-1]["updates"] == 100


def test_camera_latest_jpeg(client, live):
    assert client.get("/api/cameras/front/latest.jpg").status_code == 404
    live.publish_frame("front", frame(3), seq=41)
    r = client.get("/api/cameras/front/latest.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.headers["x-frame-seq"] == "41"
    img = np.asarray(Image.open(io.BytesIO(r.content)))
    assert img.shape == (48, 64, 3) and abs(int(img[..., 0].mean()) - (3 * 37) % 256) < 8
    for bad in ["..", ".hidden", "a" * 65, "front;rm", "fr%00nt"]:
        assert client.get(f"/api/cameras/{bad}/latest.jpg").status_code in (404, 422), bad


def test_websocket_streams_state_and_frames_with_flow_control(client, live):
    live.publish_frame("front", frame(1), seq=1)
    with client.websocket_connect("/api/live/ws") as ws:
        got_state = got_frame = None
        for _ in range(10):
            msg = ws.receive()
            if msg.get("text"):
                got_state = got_state or json.loads(msg["text"])
            elif msg.get("bytes"):
                got_frame = msg["bytes"]
            if got_state and got_frame:
                break
        assert got_state["type"] == "state" and "front" in got_state["cameras"]
        hlen = int.from_bytes(got_frame[:2], "big")
        header = json.loads(got_frame[2:2 + hlen])
        assert header == {**header, "type": "frame", "cam": "front", "seq": 1}
        assert np.asarray(Image.open(io.BytesIO(got_frame[2 + hlen:]))).shape == (48, 64, 3)
        ws.send_text('{"type": "ack", "cam": "front", "seq": 1}')
        live.publish_frame("front", frame(2), seq=2)
        for _ in range(20):
            msg = ws.receive()
            if msg.get("bytes"):
                h = json.loads(msg["bytes"][2:2 + int.from_bytes(msg["bytes"][:2], "big")])
                assert h["seq"] == 2
                break
        else:
            pytest.fail("second frame never arrived")


def test_websocket_from_another_web_page_is_refused(client, live):
    from starlette.websockets import WebSocketDisconnect

    live.publish_frame("front", frame(1))
    with pytest.raises(WebSocketDisconnect) as exc:
        with client.websocket_connect("/api/live/ws", headers={"Origin": "http://evil.example"}) as ws:
            ws.receive()
    assert exc.value.code == 1008
    with client.websocket_connect("/api/live/ws", headers={"Origin": "http://testserver"}) as ws:
        assert ws.receive()["type"] == "websocket.send"  # our own page's origin streams


def test_websocket_from_another_machine_needs_the_token_first(remote, live):
    live.publish_frame("front", frame(1))
    with remote.websocket_connect("/api/live/ws") as ws:
        ws.send_text('{"token": "wrong-token-1234567890"}')
        msg = ws.receive()
        assert msg["type"] == "websocket.close" and msg["code"] == 1008
    with remote.websocket_connect("/api/live/ws") as ws:
        ws.send_text('{"token": "%s"}' % TOKEN)
        msg = ws.receive()
        assert msg.get("text") or msg.get("bytes")


# ------------------------------------------------------------------------------ episodes
def test_episode_list_and_filters(client):
    r = client.get("/api/episodes").json()
    assert r["total"] == 6 and r["tasks"] == ["cube_into_bowl", "cube_out_of_bowl"]
    assert r["episodes"][0]["id"] == f"{ROBOT}:000005"  # newest first
    q = lambda **kw: client.get("/api/episodes", params=kw).json()  # noqa: E731
    assert q(task="cube_into_bowl")["total"] == 3
    assert q(phase="backward")["total"] == 3
    assert q(outcome="success")["total"] == 3 and q(outcome="failure")["total"] == 2 and q(outcome="unlabelled")["total"] == 1
    assert q(eval="true")["total"] == 2 and q(eval="false")["total"] == 4
    assert {e["id"] for e in q(intervention="true")["episodes"]} == {f"{ROBOT}:000001", f"{ROBOT}:000004"}
    assert q(phase="forward", eval="false", outcome="success")["total"] == 1
    page = q(offset=4, limit=10)
    assert page["total"] == 6 and len(page["episodes"]) == 2


@pytest.mark.parametrize("params", [{"phase": "sideways"}, {"outcome": "maybe"}, {"eval": "perhaps"}, {"limit": 0},
                                    {"limit": 100000}, {"offset": -1}, {"task": "../../etc"}, {"task": "a b"},
                                    {"intervention": "2"}])
def test_episode_list_rejects_bad_filters(client, params):
    assert client.get("/api/episodes", params=params).status_code == 422


def test_episode_detail_series_and_frames(client, store):
    d = client.get(f"/api/episodes/{EID}").json()
    assert d["phase"] == "backward" and d["n_steps"] == 12 and d["outcome"] == "failure"
    assert d["classifier_outcome"] == "failure" and d["human_outcome"] is None
    assert d["intervention_segments"] == [{"index": 0, "start": 3, "end": 7, "reason": ""}]
    s = d["series"]
    assert len(s["success_prob"]) == 12 and len(s["action"]) == 12 and len(s["action"][0]) == 7
    assert s["intervention"][3:7] == [True] * 4 and not any(s["intervention"][:3])
    stored = store.read_episode(EID, cameras=["wrist"])
    for step in (0, 11):
        r = client.get(f"/api/episodes/{EID}/frames/wrist/{step}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        img = np.asarray(Image.open(io.BytesIO(r.content))).astype(int)
        assert img.shape == (32, 32, 3)
        assert np.abs(img - stored.data["images"]["wrist"][step]).mean() < 6  # the recorded frame (JPEG loss only)


@pytest.mark.parametrize("path,code", [
    (f"/api/episodes/{ROBOT}:000099", 404), ("/api/episodes/nobody:000001", 404),
    ("/api/episodes/abc", 422), (f"/api/episodes/{ROBOT}:-1", 422), (f"/api/episodes/{ROBOT}:1e3", 422),
    (f"/api/episodes/{ROBOT}:\u0663", 422), (f"/api/episodes/{ROBOT}:1%0A", 422), ("/api/episodes/:1", 422),
    (f"/api/episodes/{ROBOT}:0000000001", 422), ("/api/episodes/..%2F..%2Fetc:1", 404),
    (f"/api/episodes/{EID}/frames/front/12", 404), (f"/api/episodes/{EID}/frames/side/0", 404),
    (f"/api/episodes/{EID}/frames/front/-1", 422), (f"/api/episodes/{EID}/frames/front/x", 422),
    (f"/api/episodes/{EID}/frames/..%2F/0", 404), (f"/api/episodes/{EID}/frames/..%5C/0", 422), (f"/api/episodes/{ROBOT}:000042/frames/front/0", 404),
])
def test_bad_episode_ids_steps_and_cameras(client, path, code):
    r = client.get(path)  # an encoded '/' splits the path: no route matches (404)
    assert r.status_code == code, (path, r.status_code, r.text)


def test_relabel_writes_a_human_label_to_the_store(client, store):
    r = client.post(f"/api/episodes/{EID}/label", json={"outcome": "success", "note": "cube is in the bowl"}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "success" and r.json()["outcome_source"] == "human"
    fresh = EpisodeStore.open(store.url)  # another reader sees it: it is in the store, not in our memory
    info = fresh.episode(EID)
    assert info.outcome == "success" and info.outcome_source == "human"
    assert info.labels[-1].note == "cube is in the bowl" and info.labels[-1].by.startswith("dashboard:")
    d = client.get(f"/api/episodes/{EID}").json()
    assert d["classifier_outcome"] == "failure" and d["human_outcome"] == "success"
    assert [h["source"] for h in d["label_history"]] == ["classifier", "human"]
    dis = client.get("/api/stats/learning").json()["disagreement"]
    assert dis["n"] == 1 and dis["disagreements"] == 1


@pytest.mark.parametrize("body", [{"outcome": "maybe"}, {"outcome": None}, {}, {"outcome": "success", "extra": 1},
                                  {"outcome": "success", "note": "x" * 501}, [1, 2]])
def test_relabel_rejects_bad_bodies(client, store, body):
    assert client.post(f"/api/episodes/{EID}/label", json=body, headers=AUTH).status_code == 422
    assert store.episode(EID).outcome == "failure"


def test_oversized_bodies_are_refused_before_parsing(client, sink):
    big = b'{"cmd": "start", "pad": "' + b"x" * 100_000 + b'"}'
    r = client.post("/api/session/command", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and sink.calls == []

    def chunks():  # no Content-Length: counted while it streams in
        for _ in range(20):
            yield b"x" * 10_000

    r = client.post("/api/session/command", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413 and sink.calls == []


def test_relabel_unknown_episode_is_404_and_bad_json_is_422(client):
    assert client.post(f"/api/episodes/{ROBOT}:000077/label", json={"outcome": "success"}, headers=AUTH).status_code == 404
    r = client.post(f"/api/episodes/{EID}/label", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422


def test_label_intervention_segment(client, store):
    r = client.post(f"/api/episodes/{EID}/interventions/0", json={"reason": "about to collide"}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["intervention_segments"][0]["reason"] == "about to collide"
    assert EpisodeStore.open(store.url).episode(EID).intervention_segments[0].reason == "about to collide"
    assert client.post(f"/api/episodes/{EID}/interventions/1", json={"reason": "x"}, headers=AUTH).status_code == 404
    assert client.post(f"/api/episodes/{ROBOT}:000000/interventions/0", json={"reason": "x"}, headers=AUTH).status_code == 404
    for bad in [{"reason": ""}, {"reason": "   "}, {"reason": "a\x00b"}, {"reason": "x" * 201}, {}]:
        assert client.post(f"/api/episodes/{EID}/interventions/0", json=bad, headers=AUTH).status_code == 422, bad
    assert client.post(f"/api/episodes/{EID}/interventions/-1", json={"reason": "x"}, headers=AUTH).status_code == 422


# ------------------------------------------------------------------------------ learning stats
def test_learning_stats_from_the_store(client):
    st = client.get("/api/stats/learning", params={"window": 2}).json()
    # training episodes 0,1,3 labelled (4 unlabelled): success, failure | success
    assert [(p["successes"], p["n"]) for p in st["train"]] == [(1, 2), (1, 1)]
    assert [(p["successes"], p["n"]) for p in st["eval"]] == [(1, 2)]
    lo, hi = st["train"][0]["lo"], st["train"][0]["hi"]
    assert lo == pytest.approx(0.0945, abs=1e-3) and hi == pytest.approx(0.9055, abs=1e-3)  # Wilson, k=1 n=2
    t = st["totals"]
    assert t["episodes"] == 6 and t["train_success"]["n"] == 3 and t["eval_success"]["n"] == 2 and t["interventions"] == 2
    assert st["hourly"][0]["episodes"] == 6 and st["hourly"][0]["interventions"] == 2
    assert client.get("/api/stats/learning", params={"window": 0}).status_code == 422


# ------------------------------------------------------------------------------ control
@pytest.mark.parametrize("cmd", ["start", "pause", "resume", "stop"])
def test_session_commands_reach_the_control_sink(client, sink, cmd):
    r = client.post("/api/session/command", json={"cmd": cmd}, headers=AUTH)
    assert r.status_code == 200 and sink.calls[-1][1:] == ("session_command", cmd)


@pytest.mark.parametrize("body", [{"cmd": "explode"}, {"cmd": ""}, {}, {"cmd": "start", "x": 1}, {"cmd": 1}])
def test_bad_session_commands_are_422(client, sink, body):
    assert client.post("/api/session/command", json=body, headers=AUTH).status_code == 422
    assert sink.calls == []


def test_estop_and_clear(client, sink):
    assert client.post("/api/estop", headers=AUTH).status_code == 200
    assert sink.kinds() == ["estop"] and client.get("/api/live").json()["estop_sent"] is True
    assert client.post("/api/estop/clear", headers=AUTH).status_code == 200
    assert sink.calls[-1][1:] == ("clear_estop", hashlib.sha256(TOKEN.encode()).hexdigest())
    assert client.get("/api/live").json()["estop_sent"] is False


def test_sim_scene_reset_carries_the_token_hash_the_task_and_the_layout_choice(client, sink):
    assert client.post("/api/sim/reset_scene", json={}, headers=AUTH).status_code == 200
    assert client.post("/api/sim/reset_scene", json={"task": "take_cube_out_of_bowl"}, headers=AUTH).status_code == 200
    assert client.post("/api/sim/reset_scene", json={"keep_layout": True}, headers=AUTH).status_code == 200
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    assert [c[1:] for c in sink.calls] == [("reset_scene", (digest, "", False)),
                                           ("reset_scene", (digest, "take_cube_out_of_bowl", False)),
                                           ("reset_scene", (digest, "", True))]
    for bad in ({"task": "a b"}, {"task": "x" * 200}, {"task": 3}, {"other": 1}, {"keep_layout": "maybe"}):
        assert client.post("/api/sim/reset_scene", json=bad, headers=AUTH).status_code == 422, bad
    assert len(sink.calls) == 3


def test_web_teleop_is_an_intervention_with_a_deadman(client, sink, config):
    r = client.post("/api/teleop", json={"action": [0.5, 0, 0, 0, 0, 0, -1]}, headers=AUTH)
    assert r.status_code == 200
    assert sink.kinds() == ["intervening", "teleop"] and sink.intervening is True
    assert sink.calls[1][2].tolist() == [0.5, 0, 0, 0, 0, 0, -1]
    assert client.get("/api/live").json()["web_teleop"] is True
    client.post("/api/teleop", json={"action": [0, 0.2, 0, 0, 0, 0, -1]}, headers=AUTH)
    assert sink.kinds() == ["intervening", "teleop", "teleop"]
    deadline = time.monotonic() + 5
    while sink.intervening and time.monotonic() < deadline:  # no more input: the deadman releases
        time.sleep(0.05)
    assert sink.intervening is False
    stop = [v for _, k, v in sink.calls if k == "teleop"][-1]
    assert stop.tolist() == [0, 0, 0, 0, 0, 0, -1]  # zero motion, gripper kept where the person left it
    client.post("/api/teleop", json={"action": [0, 0, 0.1, 0, 0, 0, 1]}, headers=AUTH)
    assert client.post("/api/teleop/release", headers=AUTH).json()["detail"] == "released"
    assert sink.intervening is False
    assert client.post("/api/teleop/release", headers=AUTH).json()["detail"] == "was not intervening"


@pytest.mark.parametrize("action", [[0] * 6, [0] * 8, [2, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, -1.01], "fast",
                                    [0, 0, "x", 0, 0, 0, 0], None])
def test_teleop_rejects_bad_actions(client, sink, action):
    assert client.post("/api/teleop", json={"action": action}, headers=AUTH).status_code == 422
    assert sink.calls == []


def test_teleop_rejects_nan(client, sink):
    body = b'{"action": [NaN, 0, 0, 0, 0, 0, 0]}'
    r = client.post("/api/teleop", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422 and sink.calls == []


def test_estop_releases_web_teleop(client, sink):
    client.post("/api/teleop", json={"action": [0.5, 0, 0, 0, 0, 0, 1]}, headers=AUTH)
    client.post("/api/estop", headers=AUTH)
    kinds = sink.kinds()
    assert kinds.index("estop") == 2 and kinds[-1] == "intervening" and sink.intervening is False


# ------------------------------------------------------------------------------ without robot / store
def test_store_browser_without_robot_answers_503_for_commands(config, store):
    app = create_app(config, store=store)  # no control sink: `robot-stack monitor --store PATH`
    with TestClient(app, client=LOCAL) as c:
        assert c.get("/api/health").json()["robot"] is False
        assert c.get("/api/episodes").json()["total"] == 6
        for path, body in [("/api/session/command", {"cmd": "start"}), ("/api/estop", None), ("/api/estop/clear", None),
                           ("/api/teleop", {"action": [0] * 7})]:
            r = c.post(path, json=body, headers=AUTH)
            assert r.status_code == 503 and "no robot" in r.json()["detail"], path
        assert c.post("/api/teleop/release", headers=AUTH).status_code == 200  # nothing to release


def test_live_only_without_store(config, sink):
    app = create_app(config, store=None, live=LiveState(), control=sink)
    with TestClient(app, client=LOCAL) as c:
        assert c.get("/api/health").json()["store"] is False
        assert c.get("/api/episodes").status_code == 404
        assert c.get("/api/stats/learning").status_code == 404
        assert c.get(f"/api/episodes/{EID}").status_code == 404
        assert c.get("/api/live").status_code == 200


def test_generated_token_when_none_configured(store):
    app = create_app(DashboardConfig(allowed_hosts=("testserver",)), store=store)
    assert len(app.state.token) >= 30
    with TestClient(app, client=LOCAL) as c:
        assert c.get("/api/auth/check", headers={"Authorization": f"Bearer {app.state.token}"}).json()["valid"]


@pytest.mark.parametrize("path", ["/api/episodes/%ff", "/api/episodes/%00", "/api/cameras/%ff/latest.jpg",
                                  "/api/episodes/" + "9" * 5000, "/api/live?since=abc", "/api/live/success?since=nan",
                                  "/api/live/success?since=inf", "/api/learner/history?since=-inf", "/%2e%2e/%2e%2e/etc/passwd"])
def test_odd_requests_never_500(client, path):
    assert client.get(path).status_code < 500
