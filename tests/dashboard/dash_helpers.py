"""Helpers of the dashboard tests (imported by name: pytest runs with --import-mode=importlib)."""

from __future__ import annotations

import numpy as np

from robot_stack.store import EpisodeMeta, EpisodeStore
from robot_stack.store.synthetic import synthetic_episode

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROBOT = "widowx-1"
CAMERAS = {"front": (48, 64), "wrist": (32, 32)}

# (task_id, phase, eval, outcome, intervention span)
EPISODES = [
    ("cube_into_bowl", "forward", False, "success", None),
    ("cube_out_of_bowl", "backward", False, "failure", (3, 7)),
    ("cube_into_bowl", "forward", True, "success", None),
    ("cube_out_of_bowl", "backward", False, "success", None),
    ("cube_into_bowl", "forward", False, None, (2, 4)),
    ("cube_out_of_bowl", "backward", True, "failure", None),
]
N_STEPS = 12


def make_store(path, episodes=EPISODES, n_steps=N_STEPS) -> EpisodeStore:
    """A real zarr episode store with one robot and ``episodes`` (classifier-labelled)."""
    store = EpisodeStore.create(str(path))
    with store.writer(ROBOT, {"arm": "widowx250"}, cameras=CAMERAS, state_dim=8) as w:
        for i, (task, phase, is_eval, outcome, span) in enumerate(episodes):
            rec = w.begin_episode(EpisodeMeta(task_id=task, instruction=f"do {task}", phase=phase, eval=is_eval))
            for step in synthetic_episode(n_steps, CAMERAS, 8, seed=i, intervention_span=span,
                                          success=outcome == "success"):
                rec.add_step(**step)
            rec.commit(outcome=outcome, source="classifier")
    return store


def frame(seq: int, h: int = 48, w: int = 64) -> np.ndarray:
    """A test frame whose mean brightness encodes ``seq`` (changes visibly every frame)."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[..., 0] = (seq * 37) % 256
    img[: h // 2, :, 1] = 200
    return img
