"""Web dashboard: live view, learning at a glance, episode browser and session control.

``create_app(config, store, live, control)`` builds the FastAPI app from a :class:`LiveState`
(fed by the ROS side or a test) and a :class:`ControlSink` (where commands go).
"""

from .app import create_app
from .config import DashboardConfig
from .control import ControlSink, ControlUnavailable, NullControlSink, RecordingControlSink, WebTeleop, token_hash
from .episodes import EpisodeInfo, EpisodeSource, InterventionSegment, parse_episode_id
from .live import LiveState
from .server import DashboardServer

__all__ = [
    "create_app", "DashboardConfig", "ControlSink", "ControlUnavailable", "NullControlSink", "RecordingControlSink",
    "WebTeleop", "token_hash", "EpisodeInfo", "EpisodeSource", "InterventionSegment", "parse_episode_id", "LiveState",
    "DashboardServer",
]
