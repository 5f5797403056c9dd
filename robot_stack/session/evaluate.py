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


def branch_in_sim(policy, scene_name: str, task_id: str, starts: int = 12, candidates: int = 8, every: int = 8,
                  seed: int = 1000, image_size: int = 64, cameras: tuple[str, ...] = ("front",), horizon: int = 0,
                  progress: bool = False) -> dict:
    """Does the critic know which of the actor's own actions succeed? Ground truth by branching.

    From ``starts`` of ``evaluate_in_sim``'s starts (same seed, same order), the actor's mean action
    runs to the horizon; every ``every`` steps its state is saved. From each saved state, each of
    the mean and ``candidates - 1`` samples (``policy.scored_candidates``) is applied once and
    the mean continues to the horizon: a deterministic simulator then says which of them succeed.
    policy: ``act`` as in ``evaluate_in_sim``, plus ``scored_candidates(images, proprio, task_id,
    k) -> (actions (k + 1, 7), q (k + 1,))``, row 0 the mean action. Returns ``summarize_branches``
    of the branch states.
    """
    from hardware.sim.scenes import make_scene

    if starts < 1 or candidates < 2 or every < 1:
        raise ValueError(f"starts must be >= 1, candidates >= 2 and every >= 1; got {starts}, {candidates}, {every}")
    scene = make_scene(scene_name, seed=seed, image_size=image_size, cameras=cameras)
    rng = np.random.default_rng(seed)
    horizon = horizon or scene.max_episode_steps

    def mean_action() -> np.ndarray:
        return np.asarray(policy.act(scene.images(), scene.proprio(), task_id, True), dtype=np.float32)

    def mean_to_horizon(t0: int) -> bool:
        for _ in range(t0, horizon):
            if scene.success(task_id):
                return True
            scene.step(mean_action())
        return scene.success(task_id)

    rows = []
    try:
        for _ in tqdm(range(starts), desc=f"branch {task_id}", disable=not progress, leave=False):
            scene.randomize(rng, task_id=task_id)
            saved = []
            for t in range(horizon):  # the mean rollout, saving its states at the branch points
                if scene.success(task_id):
                    break
                if t % every == 0:
                    saved.append((t, scene.state()))
                scene.step(mean_action())
            rollout_success = scene.success(task_id)
            for t, state in saved:
                scene.set_state(state)
                actions, q = policy.scored_candidates(scene.images(), scene.proprio(), task_id, candidates - 1)
                outcomes = []
                for action in actions:
                    scene.set_state(state)
                    scene.step(np.asarray(action, dtype=np.float32))
                    outcomes.append(mean_to_horizon(t + 1))
                rows.append({"rollout_success": rollout_success, "outcomes": outcomes, "q": [float(x) for x in q]})
    finally:
        scene.close()
    return summarize_branches(rows)


def summarize_branches(rows: list[dict]) -> dict:
    """What ``branch_in_sim``'s branch states say, from rows {"rollout_success": bool, "outcomes":
    [bool] * K (row 0 the mean action), "q": [float] * K}.

    ``branch/deterministic``: the share of states where the mean action, replayed from the saved
    state, ended as the rollout did (below 1: the simulator does not replay, and nothing else here
    can be trusted). ``branch/mixed``: states where one action decides the outcome (some
    candidates succeed, some fail); only there can a critic's ranking matter. Over the mixed
    states: ``branch/pick_success`` (the candidate of highest Q succeeds), ``branch/chance``
    (a random candidate does), ``branch/mean_success`` (the mean action does), and
    ``branch/q_gap`` (mean Q of the succeeding candidates minus that of the failing ones). A critic
    that can teach its actor picks well above chance and has a positive gap; these are None
    without mixed states.
    """
    mixed = [r for r in rows if 0 < sum(r["outcomes"]) < len(r["outcomes"])]
    out = {"branch/states": len(rows), "branch/mixed": len(mixed),
           "branch/deterministic": float(np.mean([r["outcomes"][0] == r["rollout_success"] for r in rows])) if rows else None,
           "branch/all_succeed": sum(all(r["outcomes"]) for r in rows), "branch/all_fail": sum(not any(r["outcomes"]) for r in rows)}
    if not mixed:
        return {**out, "branch/pick_success": None, "branch/chance": None, "branch/mean_success": None, "branch/q_gap": None}
    won = [np.asarray(r["outcomes"], bool) for r in mixed]
    q = [np.asarray(r["q"], float) for r in mixed]
    return {**out,
            "branch/pick_success": float(np.mean([w[int(np.argmax(v))] for w, v in zip(won, q)])),
            "branch/chance": float(np.mean([w.mean() for w in won])),
            "branch/mean_success": float(np.mean([w[0] for w in won])),
            "branch/q_gap": float(np.mean([v[w].mean() - v[~w].mean() for w, v in zip(won, q)]))}
