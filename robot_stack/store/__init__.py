"""Episode store: zarr v3, one group per robot, commit marker, relabelling, tailing readers.

Public API (see episode_store.py for details)::

    store = EpisodeStore.create("episodes.zarr")          # or "s3://bucket/prefix", storage_options=...
    w = store.writer("widowx-1", {"arm": "widowx250"}, cameras={"front": (128, 128)}, state_dim=15)
    ep = w.begin_episode(EpisodeMeta(task_id="cube_into_bowl", instruction="put the cube in the bowl"))
    ep.add_step(images={"front": img}, state=s, action=a, reward=r, success_prob=p, ...)
    eid = ep.commit(outcome="success", source="classifier")
    store.episodes(phase="forward", eval=False); store.read_episode(eid).data["action"]
    new, cursor = store.poll(cursor)
"""

from robot_stack.store.episode_store import (
    Episode,
    EpisodeStore,
    StoreConfig,
    StoreCursor,
    VerifyReport,
)
from robot_stack.store.writer import EpisodeRecorder, RobotWriter
from robot_stack.store.errors import (
    EpisodeNotFoundError,
    EpisodeReadError,
    IncompatibleStoreError,
    MissingNodeError,
    StoreError,
    WriterConflictError,
)
from robot_stack.store.meta import (
    FORMAT_VERSION,
    EpisodeInfo,
    EpisodeMeta,
    InterventionSegment,
    Label,
    episode_id,
    parse_episode_id,
)

__all__ = [
    "Episode", "EpisodeRecorder", "EpisodeStore", "RobotWriter", "StoreConfig", "StoreCursor", "VerifyReport",
    "EpisodeNotFoundError", "EpisodeReadError", "IncompatibleStoreError", "MissingNodeError", "StoreError",
    "WriterConflictError", "FORMAT_VERSION", "EpisodeInfo", "EpisodeMeta", "InterventionSegment", "Label",
    "episode_id", "parse_episode_id",
]
