"""The dashboard's FastAPI application: one page, a JSON API, and a live WebSocket stream.

``create_app(config, store, live, control)`` builds it from plain objects, so it runs with a ROS
graph (a dashboard node feeds ``live`` and implements ``control``), as a recorded-store browser
(``control`` = :class:`NullControlSink`) and in tests. API docs: ``/docs`` and ``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import json
import logging
import math
import time
import urllib.parse
from typing import Annotated, Any, Literal, Optional

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.trustedhost import TrustedHostMiddleware

from . import auth
from .config import DashboardConfig
from .control import ControlSink, ControlUnavailable, NullControlSink, WebTeleop, token_hash
from .episodes import EPISODE_ID, EpisodeInfo, EpisodeSource, parse_episode_id
from .live import CAMERA_NAME, LiveState, encode_jpeg
from .models import (AuthCheck, EpisodeDetail, EpisodeList, EpisodeSummary, Health, InterventionRequest,
                     LabelRequest, LearnerHistory, LearningStats, LiveSnapshot, Ok, ResetSceneRequest, SessionCommandRequest,
                     SuccessHistory, TeleopRequest)
from .stats import learning_stats

log = logging.getLogger("robot_stack.dashboard")

EpisodeIdPath = Annotated[str, Path(pattern=EPISODE_ID.pattern, description="episode id '<robot>:<index>'")]
CameraPath = Annotated[str, Path(pattern=CAMERA_NAME.pattern, description="camera name")]
_STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml",
                 ".ico": "image/x-icon"}
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'",
}


MAX_BODY_BYTES = 64 * 1024  # every request body of this API is a small JSON object


class BodyLimitMiddleware:
    """Answers 413 to request bodies over ``max_bytes`` before anything reads them into memory
    (FastAPI parses a body before the token check runs)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await JSONResponse({"detail": f"request body over {self.max_bytes} bytes"}, 413)(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, detail=f"request body over {self.max_bytes} bytes")
            return message

        return await self.app(scope, limited_receive, send)


def _load_static() -> dict[str, tuple[bytes, str]]:
    """The packaged page files, read once: only these names can ever be served."""
    files: dict[str, tuple[bytes, str]] = {}
    root = importlib.resources.files("robot_stack.dashboard") / "static"
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if entry.is_file() and suffix in _STATIC_TYPES:
            files[entry.name] = (entry.read_bytes(), _STATIC_TYPES[suffix])
    if "index.html" not in files:
        raise RuntimeError("robot_stack/dashboard/static/index.html is missing from the package")
    return files


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats replaced by their names, so it always serialises as JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _outcome(v: bool | None) -> str | None:
    return None if v is None else ("success" if v else "failure")


def _json_list(values: Any) -> list[Any]:
    """A per-step array as a JSON list; NaN/inf (e.g. no classifier output at a step) become null."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        return np.where(np.isfinite(arr), arr, None).tolist()
    return arr.tolist()


def _summary(e: EpisodeInfo) -> dict[str, Any]:
    return {
        "id": e.id, "task_id": e.task_id, "instruction": e.instruction, "phase": e.phase, "n_steps": e.n_steps,
        "outcome": _outcome(e.outcome), "outcome_source": e.outcome_source,
        "classifier_outcome": _outcome(e.classifier_outcome), "human_outcome": _outcome(e.human_outcome),
        "eval": e.eval, "intervened": e.intervened, "intervention_steps": e.intervention_steps,
        "intervention_segments": [{"index": s.index, "start": s.start, "end": s.end, "reason": s.reason}
                                  for s in e.intervention_segments],
        "start_time": e.start_time, "end_time": e.end_time, "policy_versions": list(e.policy_versions),
        "cameras": list(e.cameras), "robot_id": e.robot_id,
    }


def _as_source(store: Any) -> EpisodeSource | None:
    """Accept an EpisodeSource, the real episode store (adapted), or None (live view only)."""
    if store is None or isinstance(store, EpisodeSource):
        return store
    from .store_source import StoreEpisodeSource  # only needed with the real store

    return StoreEpisodeSource(store)


def create_app(config: DashboardConfig | None = None, store: Any = None, live: LiveState | None = None,
               control: ControlSink | None = None) -> FastAPI:
    """Build the dashboard app.

    config: DashboardConfig (token "" = generate one; read it back from ``app.state.token``).
    store: the episode store (``robot_stack.store``), any :class:`EpisodeSource`, or None.
    live: the LiveState the ROS side (or a test) feeds; a fresh empty one if None.
    control: where commands go; :class:`NullControlSink` (commands answer 503) if None.
    """
    config = config or DashboardConfig()
    token = config.token or auth.new_token()
    source = _as_source(store)
    live = live if live is not None else LiveState(jpeg_quality=config.jpeg_quality)
    robot = control is not None and not isinstance(control, NullControlSink)
    control = control if control is not None else NullControlSink()
    teleop = WebTeleop(control, deadman_s=config.teleop_deadman_s)
    static = _load_static()
    estop_sent = {"value": False}

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        async def deadman() -> None:
            while True:
                await asyncio.sleep(min(0.1, config.teleop_deadman_s / 3))
                try:
                    teleop.check_deadman()
                except ControlUnavailable:
                    pass
                except Exception:  # keep watching whatever the sink does
                    log.exception("web teleop deadman release failed")

        task = asyncio.create_task(deadman())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(Exception):
                teleop.release()

    from robot_stack import __version__

    app = FastAPI(title="robot_stack dashboard", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,  # their pages load scripts from a CDN; the schema stays
                  description="Live view, learning progress, episode browser and session control of a "
                              "robot_stack fine-tuning session. Requests that change anything need the "
                              "operator token as `Authorization: Bearer <token>`.")
    app.state.token = token
    app.state.config = config
    app.state.live = live
    app.state.control = control
    app.state.source = source
    app.state.teleop = teleop
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=config.effective_allowed_hosts())

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for k, v in _SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        # FastAPI's own handler echoes the input, and an input NaN would make that response a 500.
        return JSONResponse(status_code=422, content={"detail": _finite(jsonable_encoder(exc.errors()))})

    @app.exception_handler(ControlUnavailable)
    async def _no_robot(_request: Request, exc: ControlUnavailable):
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    bearer = HTTPBearer(auto_error=False, description="the operator token printed at start-up")

    def require_write(request: Request, _cred: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:
        if not auth.token_matches(token, auth.presented_token(request)):
            raise auth.unauthorized("this request")

    def require_read(request: Request, _cred: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:
        if auth.read_needs_token(request, config.public_read) and not auth.token_matches(token, auth.presented_token(request)):
            raise auth.unauthorized("reading from another machine (start with --public-read to allow it)")

    def require_store() -> EpisodeSource:
        if source is None:
            raise HTTPException(404, detail="no episode store is attached to this dashboard")
        return source

    def get_episode(src: EpisodeSource, episode_id: str) -> EpisodeInfo:
        parse_episode_id(episode_id)  # the path pattern already guarantees this parses
        try:
            return src.get_episode(episode_id)
        except (KeyError, IndexError):
            raise HTTPException(404, detail=f"episode {episode_id} does not exist") from None

    Read = Depends(require_read)
    Write = Depends(require_write)

    # ----------------------------------------------------------------------- page
    def _static_response(name: str) -> Response:
        body, media = static[name]
        return Response(body, media_type=media, headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return _static_response("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    def static_file(name: str) -> Response:
        if name not in static:  # a fixed set read at start-up: no path ever reaches the filesystem
            raise HTTPException(404, detail="no such file")
        return _static_response(name)

    # ----------------------------------------------------------------------- status
    @app.get("/api/health", response_model=Health, tags=["status"])
    def health(request: Request) -> dict[str, Any]:
        """Whether the dashboard runs, has a store and reaches a robot. Never needs the token."""
        return {"ok": True, "version": __version__, "store": source is not None, "robot": robot,
                "public_read": config.public_read,
                "auth_required_for_read": auth.read_needs_token(request, config.public_read)}

    @app.get("/api/auth/check", response_model=AuthCheck, tags=["status"])
    def auth_check(request: Request, _cred: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> dict[str, bool]:
        """Whether the presented token is the operator token (the page's token box uses this)."""
        return {"valid": auth.token_matches(token, auth.presented_token(request))}

    # ----------------------------------------------------------------------- live
    def _snapshot() -> dict[str, Any]:
        snap = live.snapshot()
        snap["estop_sent"] = estop_sent["value"]
        snap["web_teleop"] = teleop.active
        return snap

    @app.get("/api/live", response_model=LiveSnapshot, dependencies=[Read], tags=["live"])
    def live_snapshot() -> dict[str, Any]:
        """Current session state, classifier output, policy version, intervention flag, learner metrics."""
        return _snapshot()

    @app.get("/api/live/success", response_model=SuccessHistory, dependencies=[Read], tags=["live"])
    def live_success(since: Annotated[Optional[float], Query(description="only points newer than this time")] = None):
        """The classifier's success probability over the last minutes: [t, prob, threshold, task_id]."""
        return {"points": [list(p) for p in live.success_history(since)]}

    @app.get("/api/cameras/{camera}/latest.jpg", dependencies=[Read], tags=["live"],
             responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "no frame from this camera"}})
    def camera_latest(camera: CameraPath) -> Response:
        """The newest frame of one camera as JPEG (headers X-Frame-Seq, X-Frame-Stamp)."""
        got = live.frame_jpeg(camera)
        if got is None:
            raise HTTPException(404, detail=f"no frame from camera {camera!r} yet")
        seq, stamp, jpeg = got
        return Response(jpeg, media_type="image/jpeg",
                        headers={"X-Frame-Seq": str(seq), "X-Frame-Stamp": repr(stamp), "Cache-Control": "no-store"})

    @app.websocket("/api/live/ws")
    async def live_ws(ws: WebSocket) -> None:
        """Live stream: text messages {"type": "state", ...LiveSnapshot, "success_tail": [...]} and binary
        frames (2-byte big-endian header length, JSON header {"type":"frame","cam","seq","stamp"}, JPEG).
        The client acknowledges each frame with {"type":"ack","cam","seq"} after drawing it; at most two
        unacknowledged frames per camera are in flight, so a slow client gets fewer, fresh frames."""
        origin = ws.headers.get("origin")
        if origin and urllib.parse.urlsplit(origin).netloc != ws.headers.get("host"):
            # Browsers let any web page open a WebSocket to 127.0.0.1: only our own page may read the stream.
            await ws.close(code=1008, reason="cross-origin WebSocket refused")
            return
        await ws.accept()
        try:
            if auth.read_needs_token(ws, config.public_read):
                try:
                    first = json.loads(await asyncio.wait_for(ws.receive_text(), 5.0))
                except (asyncio.TimeoutError, ValueError):
                    first = {}
                if not isinstance(first, dict) or not auth.token_matches(token, str(first.get("token", ""))):
                    await ws.close(code=1008, reason="operator token required")
                    return
            await _stream(ws)
        except WebSocketDisconnect:
            pass

    async def _stream(ws: WebSocket) -> None:
        inflight: dict[str, int] = {}
        min_dt = 0.8 / config.max_stream_fps  # slack: frames published at exactly the cap still all go out

        async def receiver() -> None:
            while True:
                msg = await ws.receive_text()
                try:
                    data = json.loads(msg)
                except ValueError:
                    continue
                if isinstance(data, dict) and data.get("type") == "ack" and isinstance(data.get("cam"), str):
                    inflight[data["cam"]] = max(0, inflight.get(data["cam"], 0) - 1)

        recv_task = asyncio.create_task(receiver())
        sent_seq: dict[str, int] = {}
        last_sent: dict[str, float] = {}
        last_state = 0.0
        last_success_t: float | None = None
        version = -1
        try:
            while not recv_task.done():
                pending = False
                now = time.monotonic()
                for cam, info in live.cameras().items():
                    if info["seq"] == sent_seq.get(cam):
                        continue
                    if inflight.get(cam, 0) >= 2 or now - last_sent.get(cam, 0.0) < min_dt:
                        pending = True
                        continue
                    got = await run_in_threadpool(live.frame_jpeg, cam)
                    if got is None:
                        continue
                    seq, stamp, jpeg = got
                    header = json.dumps({"type": "frame", "cam": cam, "seq": seq, "stamp": stamp}).encode()
                    await ws.send_bytes(len(header).to_bytes(2, "big") + header + jpeg)
                    sent_seq[cam], last_sent[cam] = seq, now
                    inflight[cam] = inflight.get(cam, 0) + 1
                if now - last_state >= 0.1:
                    snap = _snapshot()
                    tail = live.success_history(last_success_t)
                    if tail:
                        last_success_t = tail[-1][0]
                    await ws.send_text(json.dumps({"type": "state", **snap, "success_tail": [list(p) for p in tail]}))
                    last_state = now
                else:
                    pending = True
                version = await live.wait_async(version, 0.02 if pending else 0.5)
        finally:
            recv_task.cancel()
            with contextlib.suppress(BaseException):
                await recv_task

    # ----------------------------------------------------------------------- learning
    @app.get("/api/stats/learning", response_model=LearningStats, dependencies=[Read], tags=["learning"])
    def stats_learning(window: Annotated[Optional[int], Query(ge=1, le=10000, description="episodes per point")] = None):
        """Success rate over time (training and evaluation episodes separately, Wilson 95 % intervals),
        episodes and interventions per hour, classifier/human disagreement."""
        src = require_store()
        return learning_stats(src.list_episodes(), window or config.stats_window)

    @app.get("/api/learner/history", response_model=LearnerHistory, dependencies=[Read], tags=["learning"])
    def learner_history(since: Annotated[Optional[float], Query(description="only points newer than this time")] = None):
        """Learner metrics received so far (losses/..., q/..., updates_per_s, ...), oldest first."""
        points = live.metrics_history(since)
        keys = sorted({k for p in points for k in p if k != "t"})
        return {"keys": keys, "points": points}

    # ----------------------------------------------------------------------- episodes
    @app.get("/api/episodes", response_model=EpisodeList, dependencies=[Read], tags=["episodes"])
    def list_episodes(
        task: Annotated[Optional[str], Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$", description="task id")] = None,
        phase: Annotated[Optional[Literal["forward", "backward"]], Query()] = None,
        outcome: Annotated[Optional[Literal["success", "failure", "unlabelled"]], Query()] = None,
        eval: Annotated[Optional[bool], Query(description="only evaluation (true) or training (false) episodes")] = None,
        intervention: Annotated[Optional[bool], Query(description="only episodes with (true) or without (false) interventions")] = None,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ):
        """Episodes, newest first, filtered by task, phase, outcome, eval flag and intervention."""
        src = require_store()
        all_eps = src.list_episodes()
        want = {"success": True, "failure": False, "unlabelled": None}
        eps = [e for e in sorted(all_eps, key=lambda e: e.order, reverse=True)
               if (task is None or e.task_id == task) and (phase is None or e.phase == phase)
               and (outcome is None or e.outcome is want[outcome]) and (eval is None or e.eval == eval)
               and (intervention is None or e.intervened == intervention)]
        return {"total": len(eps), "offset": offset, "limit": limit,
                "episodes": [_summary(e) for e in eps[offset:offset + limit]],
                "tasks": sorted({e.task_id for e in all_eps})}

    @app.get("/api/episodes/{episode_id}", response_model=EpisodeDetail, dependencies=[Read], tags=["episodes"])
    def episode_detail(episode_id: EpisodeIdPath):
        """One episode's metadata, label history and per-step curves (success_prob, reward, intervention, ...)."""
        src = require_store()
        e = get_episode(src, episode_id)
        series = src.series(e.id)
        return {**_summary(e), "label_history": e.label_history,
                "series": {k: _json_list(v) for k, v in series.items()}}

    @app.get("/api/episodes/{episode_id}/frames/{camera}/{step}", dependencies=[Read], tags=["episodes"],
             responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "no such episode, camera or step"}})
    def episode_frame(episode_id: EpisodeIdPath, camera: CameraPath,
                      step: Annotated[int, Path(ge=0, le=10**7, description="step index")]) -> Response:
        """One recorded camera frame as JPEG."""
        src = require_store()
        e = get_episode(src, episode_id)
        if camera not in e.cameras:
            raise HTTPException(404, detail=f"episode {e.id} has no camera {camera!r} (has {e.cameras})")
        if step >= e.n_steps:
            raise HTTPException(404, detail=f"episode {e.id} has {e.n_steps} steps; step {step} does not exist")
        image = src.frame(e.id, camera, step)
        return Response(encode_jpeg(np.asarray(image), config.jpeg_quality), media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600"})

    @app.post("/api/episodes/{episode_id}/label", response_model=EpisodeSummary, dependencies=[Write], tags=["episodes"])
    def label_episode(episode_id: EpisodeIdPath, body: LabelRequest):
        """Set the human outcome label (written to the store's label history with source "human")."""
        src = require_store()
        e = get_episode(src, episode_id)
        try:
            updated = src.set_outcome(e.id, body.outcome == "success", "human", body.note)
        except ValueError as exc:
            raise HTTPException(400, detail=str(exc)) from None
        log.info("episode %s labelled %s by the dashboard", e.id, body.outcome)
        return _summary(updated)

    @app.post("/api/episodes/{episode_id}/interventions/{segment}", response_model=EpisodeSummary,
              dependencies=[Write], tags=["episodes"])
    def label_intervention(episode_id: EpisodeIdPath,
                           segment: Annotated[int, Path(ge=0, le=100000, description="segment number in the episode")],
                           body: InterventionRequest):
        """Label intervention segment ``segment`` of an episode (steps where a person drove) with a reason."""
        src = require_store()
        e = get_episode(src, episode_id)
        if segment >= len(e.intervention_segments):
            raise HTTPException(404, detail=f"episode {e.id} has {len(e.intervention_segments)} intervention "
                                            f"segment(s); no segment {segment}")
        try:
            updated = src.label_intervention(e.id, segment, body.reason, body.note)
        except ValueError as exc:
            raise HTTPException(400, detail=str(exc)) from None
        log.info("episode %s intervention segment %d labelled %r", e.id, segment, body.reason)
        return _summary(updated)

    # ----------------------------------------------------------------------- control
    @app.post("/api/session/command", response_model=Ok, dependencies=[Write], tags=["control"],
              responses={503: {"description": "no robot connected"}})
    def session_command(body: SessionCommandRequest):
        """Start, pause, resume or stop the session (published on session/command)."""
        control.session_command(body.cmd)
        log.warning("session command %s from the dashboard", body.cmd)
        return {"ok": True, "detail": f"sent {body.cmd}"}

    @app.post("/api/estop", response_model=Ok, dependencies=[Write], tags=["control"],
              responses={503: {"description": "no robot connected"}})
    def estop():
        """Emergency stop: arm/estop true (the controller latches it until cleared). Ends web teleop."""
        control.estop()  # first: nothing else may delay it
        estop_sent["value"] = True
        log.warning("E-STOP from the dashboard")
        with contextlib.suppress(Exception):
            teleop.release()
        return {"ok": True, "detail": "e-stop sent"}

    @app.post("/api/estop/clear", response_model=Ok, dependencies=[Write], tags=["control"],
              responses={503: {"description": "no robot connected"}})
    def estop_clear():
        """Ask the controller to clear its e-stop latch (arm/estop_clear with the token's SHA-256)."""
        control.clear_estop(token_hash(token))
        estop_sent["value"] = False
        log.warning("e-stop clear requested from the dashboard")
        return {"ok": True, "detail": "e-stop clear sent"}

    @app.post("/api/sim/reset_scene", response_model=Ok, dependencies=[Write], tags=["control"],
              responses={503: {"description": "no robot connected"}})
    def reset_scene(body: ResetSceneRequest):
        """Simulated robots only: re-stage the scene (sim/reset_scene with the token's SHA-256), as a
        person would after an alert; then start the session to acknowledge the alert."""
        control.reset_scene(token_hash(token), body.task, body.keep_layout)
        log.warning("sim scene reset requested from the dashboard (task %r%s)", body.task or "forward",
                    ", layout kept" if body.keep_layout else "")
        return {"ok": True, "detail": "scene reset sent"}

    @app.post("/api/teleop", response_model=Ok, dependencies=[Write], tags=["control"],
              responses={503: {"description": "no robot connected"}})
    def teleop_action(body: TeleopRequest):
        """One web-teleop action; the first one starts an intervention. Repeat at >= 1/deadman rate while
        the operator holds a key; the intervention ends on /api/teleop/release or after the deadman time."""
        teleop.act(np.asarray(body.action, dtype=np.float32))
        return {"ok": True, "detail": "intervening"}

    @app.post("/api/teleop/release", response_model=Ok, dependencies=[Write], tags=["control"],
              responses={503: {"description": "no robot connected"}})
    def teleop_release():
        """End the web-teleop intervention (zero action, teleop/intervening false)."""
        released = teleop.release()
        return {"ok": True, "detail": "released" if released else "was not intervening"}

    return app
