"""Ground-truth evaluation of a policy in a sim scene (pre-training checks and the session benchmark).

Reward-free and classifier-free on purpose: success is the scene's own ground truth, so these
numbers measure the policy, not the classifier.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm


def evaluate_in_sim(policy, scene_name: str, task_id: str, episodes: int = 10, seed: int = 1000,
                    image_size: int = 64, cameras: tuple[str, ...] = ("front",), horizon: int = 0,
                    deterministic: bool = True, progress: bool = False) -> dict:
    """Success rate of ``policy`` on ``task_id`` from randomised starts where it is not yet solved.

    policy: ``act(images {camera: (H, W, 3) uint8}, proprio (S,), task_id, deterministic) -> (7,)``.
    """
    from hardware.sim.scenes import make_scene

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    scene = make_scene(scene_name, seed=seed, image_size=image_size, cameras=cameras)
    rng = np.random.default_rng(seed)
    horizon = horizon or scene.max_episode_steps
    successes, steps = 0, []
    try:
        for _ in tqdm(range(episodes), desc=f"eval {task_id}", disable=not progress, leave=False):
            scene.randomize(rng, task_id=task_id)
            for t in range(horizon):
                action = policy.act(scene.images(), scene.proprio(), task_id, deterministic)
                scene.step(np.asarray(action, dtype=np.float32))
                if scene.success(task_id):
                    successes += 1
                    steps.append(t + 1)
                    break
    finally:
        scene.close()
    return {"task": task_id, "episodes": episodes, "successes": successes, "success_rate": successes / episodes,
            "mean_steps_to_success": float(np.mean(steps)) if steps else None}
