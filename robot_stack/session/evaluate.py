"""Ground-truth evaluation of a policy in a sim scene (pre-training checks, ``robot-stack evaluate``
and the session benchmarks).

Reward-free and classifier-free on purpose: success is the scene's own ground truth, so these
numbers measure the policy, not the classifier.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from tqdm import tqdm


def evaluate_in_sim(policy, scene_name: str, task_id: str, episodes: int = 10, seed: int = 1000,
                    image_size: int = 64, cameras: tuple[str, ...] = ("front",), horizon: int = 0,
                    deterministic: bool = True, progress: bool = False, layout_seed: int | None = None) -> dict:
    """Success rate of ``policy`` on ``task_id`` from randomised starts where it is not yet solved.

    ``layout_seed`` None: every start a new layout (fixtures, distractors, lighting, cameras), a
    test of generalisation. Otherwise every start keeps the layout the scene builds from that seed
    (a session's scene: ``SessionConfig.seed``) and only the task's object moves: the room the
    robot practised in, as a lab evaluates its fine-tuned policy (RoboFuME's protocol).

    policy: ``act(images {camera: (H, W, 3) uint8}, proprio (S,), task_id, deterministic) -> (7,)``
    and ``reset()`` (called at every start: a chunked policy drops the rest of its last chunk).

    Returns ``success_rate`` and friends, and ``by_start``: ``{kind: {"episodes", "successes",
    "success_rate"}}`` by the kind of start the scene staged (``SimScene.start_kind``: e.g. the cube
    against the bowl's wall), so a rate can be read as where the policy fails.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    scene, next_start = _starts(scene_name, task_id, seed, layout_seed, image_size, cameras)
    horizon = horizon or scene.max_episode_steps
    successes, steps = 0, []
    by_start: dict[str, list[int]] = {}  # kind -> [episodes, successes]
    try:
        for _ in tqdm(range(episodes), desc=f"eval {task_id}", disable=not progress, leave=False):
            next_start()
            policy.reset()
            tally = by_start.setdefault(scene.start_kind, [0, 0])
            tally[0] += 1
            for t in range(horizon):
                action = policy.act(scene.images(), scene.proprio(), task_id, deterministic)
                scene.step(np.asarray(action, dtype=np.float32))
                if scene.success(task_id):
                    successes += 1
                    tally[1] += 1
                    steps.append(t + 1)
                    break
    finally:
        scene.close()
    return {"task": task_id, "episodes": episodes, "successes": successes, "success_rate": successes / episodes,
            "mean_steps_to_success": float(np.mean(steps)) if steps else None,
            "by_start": {kind: {"episodes": n, "successes": k, "success_rate": k / n} for kind, (n, k) in sorted(by_start.items())}}


def _starts(scene_name: str, task_id: str, seed: int, layout_seed: int | None, image_size: int,
            cameras: tuple[str, ...]):
    """``(scene, next_start)``: the scene the evaluation rolls out in, and the function that stages
    its next start (``seed`` fixes the sequence of starts). ``layout_seed`` None: each start a new
    layout; else the layout the scene builds from that seed, only the task's object moved."""
    from hardware.sim.scenes import make_scene

    keep_layout = layout_seed is not None
    scene = make_scene(scene_name, seed=layout_seed if keep_layout else seed, image_size=image_size, cameras=cameras)
    rng = np.random.default_rng(seed)
    return scene, lambda: scene.randomize(rng, task_id=task_id, keep_layout=keep_layout)


def sim_evaluation(cfg, episodes: int, session_layout: bool = False, seed: int = 1000,
                   progress: bool = True) -> Callable[[object, str], dict]:
    """``evaluate(policy, task_id) -> evaluate_in_sim's result`` by simulator ground truth for the
    session config ``cfg`` (its scene, cameras, image size and horizon): from starts in new layouts,
    or (``session_layout``) in the session scene's own layout. Every call uses the same starts."""
    layout_seed = cfg.seed if session_layout else None

    def evaluate(policy, task: str) -> dict:
        return evaluate_in_sim(policy, cfg.scene, task, episodes, seed=seed, image_size=cfg.image_size,
                               cameras=tuple(cfg.cameras), horizon=cfg.episode.horizon, progress=progress,
                               layout_seed=layout_seed)

    return evaluate


def sim_success(cfg, episodes: int, session_layout: bool = False, seed: int = 1000,
                progress: bool = True) -> Callable[[object, str], float]:
    """``success(policy, task_id) -> rate``: ``sim_evaluation``'s success rate alone."""
    evaluate = sim_evaluation(cfg, episodes, session_layout, seed, progress)
    return lambda policy, task: evaluate(policy, task)["success_rate"]


def _evenly_spaced(items: list[int], points: int) -> list[int]:
    """Up to ``points`` of ``items`` (ascending), evenly spaced from the first to the last, both kept."""
    if points >= len(items):
        return list(items)
    return sorted({items[round(i * (len(items) - 1) / max(1, points - 1))] for i in range(points)})


def curve_versions(versions: list[int], final: int, points: int, start: int = 0) -> list[int]:
    """Up to ``points`` versions from ``start`` to before ``final``, evenly spaced from the first: the
    learning curve's x. ``start``: the pre-trained version the curve begins at (the newest of several
    pre-trained seeds; the ones before it are not a point of the curve)."""
    return _evenly_spaced([v for v in versions if start <= v < final], points)


def pick_versions(spec: str, versions: list[int], latest: int | None) -> list[int]:
    """The policy versions ``spec`` names among ``versions`` (committed, ascending), ascending.

    ``spec``: ``latest`` (the one ``latest`` points at), ``all``, ``curve:N`` (N versions evenly
    spaced from the first to the latest, both included) or numbers, comma-separated (``1,69,137``).
    Raises ValueError for a malformed spec, a version that is not on disk, or no versions at all.
    """
    if not versions or latest is None:
        raise ValueError("no policy versions committed yet")
    spec = spec.strip()
    if spec == "latest":
        return [latest]
    if spec == "all":
        return list(versions)
    if spec.startswith("curve:"):
        try:
            points = int(spec[len("curve:"):])
        except ValueError:
            points = 0
        if points < 1:
            raise ValueError(f"curve:N wants N >= 1 (the number of versions), got {spec!r}")
        picks = _evenly_spaced([v for v in versions if v <= latest], points) if points > 1 else []
        return sorted({*picks, latest})
    try:
        picked = sorted({int(v) for v in spec.split(",")})
    except ValueError:
        raise ValueError(f"versions: 'latest', 'all', 'curve:N' or numbers like 1,69,137; got {spec!r}") from None
    missing = [v for v in picked if v not in versions]
    if missing:
        raise ValueError(f"version(s) {missing} not on disk; committed: {_ranges(versions)}")
    return picked


def _ranges(values: list[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``'1-3, 7'`` (a long list of versions, readable in an error)."""
    out, start = [], None
    for i, v in enumerate(values):
        start = v if start is None else start
        if i + 1 == len(values) or values[i + 1] != v + 1:
            out.append(str(v) if start == v else f"{start}-{v}")
            start = None
    return ", ".join(out)


def branch_in_sim(policy, scene_name: str, task_id: str, starts: int = 12, candidates: int = 8, every: int = 8,
                  seed: int = 1000, image_size: int = 64, cameras: tuple[str, ...] = ("front",), horizon: int = 0,
                  continuations: int = 1, progress: bool = False, layout_seed: int | None = None) -> dict:
    """Does the critic know which of the actor's own actions succeed? Ground truth by branching.

    From ``starts`` of ``evaluate_in_sim``'s starts (same seed, same order, the same ``layout_seed``
    meaning: None a new layout per start, else that seed's layout kept), the actor's mean action
    runs to the horizon; every ``every`` steps its state is saved. From each saved state, each of
    the mean and ``candidates - 1`` samples (``policy.scored_candidates``) is applied once, then
    the episode finishes: with ``continuations`` 1, by the mean action (a deterministic simulator
    then says exactly which candidates succeed); with more, by the stochastic policy that many
    times (each candidate's success rate under the policy that would follow it: Q's own meaning).
    The replay check always finishes the mean candidate with the mean action once.
    policy: ``act`` as in ``evaluate_in_sim``, plus ``scored_candidates(images, proprio, task_id,
    k) -> (actions (k + 1, 7), q (k + 1,))``, row 0 the mean action. A policy of action chunks
    (``policy.action_chunk`` h > 1) gives candidate chunks (k + 1, h, 7), each run as the policy
    runs its chunks (its first ``policy.steps_per_plan`` actions) before the finish; ``every``
    must then be a multiple of ``steps_per_plan``, so that branch points are where the rollout
    plans. Returns ``summarize_branches`` of the branch states.
    """
    if starts < 1 or candidates < 2 or every < 1 or continuations < 1:
        raise ValueError("starts, every and continuations must be >= 1 and candidates >= 2; "
                         f"got {starts}, {every}, {continuations}, {candidates}")
    if every % policy.steps_per_plan:
        raise ValueError(f"every ({every}) must be a multiple of the actions the policy runs per plan "
                         f"({policy.steps_per_plan}): branch points must be where the rollout plans a chunk")
    scene, next_start = _starts(scene_name, task_id, seed, layout_seed, image_size, cameras)
    horizon = horizon or scene.max_episode_steps

    def finish(t0: int, deterministic: bool) -> bool:
        for _ in range(t0, horizon):
            if scene.success(task_id):
                return True
            scene.step(np.asarray(policy.act(scene.images(), scene.proprio(), task_id, deterministic), dtype=np.float32))
        return scene.success(task_id)

    def after(state: np.ndarray, candidate: np.ndarray, t: int, deterministic: bool) -> bool:
        scene.set_state(state)
        policy.reset()
        chunk = np.asarray(candidate, dtype=np.float32).reshape(-1, candidate.shape[-1])  # (h, 7)
        chunk = chunk[:min(policy.steps_per_plan, horizon - t)]
        for action in chunk:  # as the rollout runs a plan: success checked before each step
            if scene.success(task_id):
                return True
            scene.step(action)
        return finish(t + len(chunk), deterministic)

    rows = []
    try:
        for _ in tqdm(range(starts), desc=f"branch {task_id}", disable=not progress, leave=False):
            next_start()
            policy.reset()
            saved = []
            for t in range(horizon):  # the mean rollout, saving its states at the branch points
                if scene.success(task_id):
                    break
                if t % every == 0:
                    saved.append((t, scene.state()))
                scene.step(np.asarray(policy.act(scene.images(), scene.proprio(), task_id, True), dtype=np.float32))
            rollout_success = scene.success(task_id)
            for t, state in saved:
                scene.set_state(state)
                actions, q = policy.scored_candidates(scene.images(), scene.proprio(), task_id, candidates - 1)
                if continuations == 1:
                    rates = [float(after(state, a, t, True)) for a in actions]
                    replay = bool(rates[0])
                else:
                    rates = [float(np.mean([after(state, a, t, False) for _ in range(continuations)])) for a in actions]
                    replay = after(state, actions[0], t, True)
                rows.append({"rollout_success": rollout_success, "replay_success": replay, "outcomes": rates,
                             "q": [float(x) for x in q]})
    finally:
        scene.close()
    return summarize_branches(rows, continuations)


def summarize_branches(rows: list[dict], continuations: int = 1) -> dict:
    """What ``branch_in_sim``'s branch states say, from rows {"rollout_success": bool,
    "replay_success": bool, "outcomes": [success rate over ``continuations``] * K (row 0 the mean
    action), "q": [float] * K}.

    ``branch/deterministic``: the share of states where the mean action, replayed from the saved
    state and finished by the mean, ended as the rollout did (below 1: the simulator does not
    replay, and nothing else here can be trusted). ``branch/mixed``: states where the outcomes are
    neither all success nor all failure; only there can a critic's ranking matter. Over the mixed
    states: ``branch/pick_success`` (of the candidate of highest Q), ``branch/chance`` (of a
    random candidate), ``branch/mean_success`` (of the mean action) and ``branch/q_corr`` (per
    state, the correlation of Q with the outcomes). With one continuation also ``branch/q_gap``
    (mean Q of the succeeding candidates minus that of the failing ones); with more,
    ``branch/excess_var``: how much the candidates' true success probabilities differ, beyond what
    ``continuations`` coin flips add to their rates (an unbiased estimate of their variance across
    candidates): above 0, the actions differ in expected outcome, which is what Q should learn.
    A critic that can teach its actor picks well above chance; these are None without mixed states.
    """
    won = [np.asarray(r["outcomes"], float) for r in rows]
    mixed = [i for i, w in enumerate(won) if w.max() > 0 and w.min() < 1]
    out = {"branch/states": len(rows), "branch/mixed": len(mixed), "branch/continuations": continuations,
           "branch/deterministic": float(np.mean([r["replay_success"] == r["rollout_success"] for r in rows])) if rows else None,
           "branch/all_succeed": sum(bool(w.min() == 1) for w in won), "branch/all_fail": sum(bool(w.max() == 0) for w in won)}
    keys = ("branch/pick_success", "branch/chance", "branch/mean_success", "branch/q_corr",
            "branch/q_gap" if continuations == 1 else "branch/excess_var")
    if not mixed:
        return {**out, **dict.fromkeys(keys)}
    w = [won[i] for i in mixed]
    q = [np.asarray(rows[i]["q"], float) for i in mixed]
    corr = [np.corrcoef(a, b)[0, 1] for a, b in zip(w, q) if a.std() > 0 and b.std() > 0]
    out.update({"branch/pick_success": float(np.mean([a[int(np.argmax(b))] for a, b in zip(w, q)])),
                "branch/chance": float(np.mean([a.mean() for a in w])),
                "branch/mean_success": float(np.mean([a[0] for a in w])),
                "branch/q_corr": float(np.mean(corr)) if corr else None})
    if continuations == 1:
        out["branch/q_gap"] = float(np.mean([b[a > 0.5].mean() - b[a <= 0.5].mean() for a, b in zip(w, q)]))
    else:
        # unbiased: E[r(1-r)] = p(1-p)(1 - 1/R) for a rate r of R flips, so the flips' own variance
        # p(1-p)/R is estimated by r(1-r)/(R-1)
        out["branch/excess_var"] = float(np.mean([a.var(ddof=1) - (a * (1 - a)).mean() / (continuations - 1) for a in w]))
    return out
