"""Prior data for a simulated session: scripted-expert episodes written to the episode store.

What RoboFuME pre-trains on, made in sim: successful forward and backward demonstrations, failure
episodes (the expert with heavy noise, cut short), and optionally episodes of *other* tasks from
another scene as generic prior data. Each episode starts from a randomised scene in which its
task is not yet solved. After the first success the recording goes on for ``settle_steps`` more
steps with the expert's own actions, so the frames that show the finished task are in the store
(the success classifier learns from an episode's last frames). ``labelled_sim_snapshots`` adds
simulator-labelled frames of varied states for the classifier alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, get_args

import numpy as np
from tqdm import tqdm

from robot_stack.config import HASH_OMITS_DEFAULT

#: the pick expert's descent gates (hardware.sim.experts.DESCENT_GATES), by name
ExpertGate = Literal["strict", "loose"]


@dataclass
class PriorDataConfig:
    """How much scripted prior data to collect."""

    demos_per_task: int = 20  # successful expert episodes per task of the pair
    forward_demos: int = field(default=-1, metadata=HASH_OMITS_DEFAULT)  # expert demos of the forward task (the pair's first) instead (-1 = demos_per_task): fewer makes a weak forward policy whose reset partner is reliable
    failures_per_task: int = 8  # failure episodes per task (heavy noise, cut short)
    expert_noise: float = 0.1  # action noise of the demonstrating expert
    expert_gate: ExpertGate = field(default="strict", metadata=HASH_OMITS_DEFAULT)  # when a pick expert starts down onto the object: 'strict' (lined up within 8 mm and turned first) or 'loose' (within 2 cm, turns on the way down: a rule a 64 px policy can imitate)
    failure_noise: float = 1.0  # action noise of failure episodes
    failure_fraction_of_horizon: float = 0.6  # failure episodes stop after this share of the horizon
    settle_steps: int = 3  # steps recorded after the first success (success frames for the classifier)
    other_scene: str = ""  # another scene whose tasks are added as generic prior data ('' = none)
    other_episodes_per_task: int = 0  # expert episodes per task of the other scene
    max_attempts_factor: int = 3  # give up after this many attempts per wanted demo

    def __post_init__(self) -> None:
        for name in ("demos_per_task", "failures_per_task", "settle_steps", "other_episodes_per_task"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.forward_demos < -1:
            raise ValueError(f"forward_demos must be >= 0, or -1 for demos_per_task; got {self.forward_demos}")
        if not 0 < self.failure_fraction_of_horizon <= 1:
            raise ValueError(f"failure_fraction_of_horizon must be in (0, 1], got {self.failure_fraction_of_horizon}")
        if self.expert_noise < 0 or self.failure_noise < 0:
            raise ValueError("expert_noise and failure_noise must be >= 0")
        if self.expert_gate not in get_args(ExpertGate):
            raise ValueError(f"expert_gate must be one of {get_args(ExpertGate)}, got {self.expert_gate!r}")
        if self.max_attempts_factor < 1:
            raise ValueError(f"max_attempts_factor must be >= 1, got {self.max_attempts_factor}")

    def demos_for(self, task_index: int) -> int:
        """Expert demos of the pair's task ``task_index`` (0 = forward, 1 = backward)."""
        return self.forward_demos if task_index == 0 and self.forward_demos >= 0 else self.demos_per_task


def record_expert_episode(scene, writer, task, rng: np.random.Generator, noise: float, max_steps: int,
                          settle_steps: int, data_source: str = "prior", kind: str = "",
                          gate: str = "strict") -> tuple[str | None, bool]:
    """Run ``scene.expert`` (descent ``gate``) for ``task`` from a randomised start and commit it to ``writer``.

    ``kind`` ("demo", "failure", "other"; '' = none) is recorded as ``extra["prior_kind"]``, which
    an interrupted ``collect_prior_data`` counts to resume. Returns (episode id, success); the
    rewards as ``record_sim_episode``.
    """
    scene.randomize(rng, task_id=task.id)
    expert = scene.expert(task.id, noise=noise, rng=rng, gate=gate)
    extra = {"expert_noise": noise, "expert_gate": gate, **({"prior_kind": kind} if kind else {})}
    eid, success, _ = record_sim_episode(scene, writer, task, lambda obs, images: expert(obs), max_steps, settle_steps,
                                         data_source=data_source, extra=extra)
    return eid, success


def prior_groups(store, robot_id: str) -> list[str]:
    """The store groups ``collect_prior_data(store, ..., robot_id, ...)`` writes that hold episodes."""
    return [r for r in store.robots() if (r == robot_id or r.startswith(robot_id + "-")) and store.episodes(r)]


def _collected(store, group: str) -> dict[tuple[str, str], int]:
    """{(task id, prior kind): episodes that count toward it} of ``group``: demos and "other"
    episodes count when they succeeded (as collection counts them), failures all."""
    out: dict[tuple[str, str], int] = {}
    for e in store.episodes(group):
        kind = e.extra.get("prior_kind", "")
        if kind == "failure" or (kind in ("demo", "other") and e.extra.get("ground_truth")):
            out[e.task_id, kind] = out.get((e.task_id, kind), 0) + 1
    return out


def record_sim_episode(scene, writer, task, act, max_steps: int, settle_steps: int = 0, data_source: str = "prior",
                       extra: dict | None = None, policy_version: int = 0,
                       intervening: Callable[[], bool] | None = None) -> tuple[str | None, bool, int]:
    """Run ``act(obs, images {camera: (H, W, 3) uint8}) -> (7,) action`` on ``task`` from the scene as it
    is and commit the episode to ``writer`` with the simulator's ground truth as reward.
    ``intervening()``, asked after each ``act``, flags that step as an operator's (teleop) action.

    Returns (episode id, success, steps recorded). Reward is 1 on steps after which the task is done (sparse); after
    the first success ``settle_steps`` more are recorded; the last step is terminal on success,
    truncated otherwise. ``extra["ground_truth"]`` holds the success.
    """
    from robot_stack.store import EpisodeMeta

    recorder = writer.begin_episode(EpisodeMeta(task_id=task.id, instruction=task.instruction, phase=task.phase,
                                                data_source=data_source, extra={"scene": scene.name, **(extra or {})}))
    success_at, steps = None, 0
    for t in range(max_steps + settle_steps):
        obs = scene.observe()
        images = scene.images()
        sent = scene.step(act(obs, images))
        operator = bool(intervening and intervening())
        done = bool(scene.success(task.id))
        if done and success_at is None:
            success_at = t
        last = (success_at is not None and t - success_at >= settle_steps) or t == max_steps - 1 and success_at is None
        recorder.add_step(images=images, state=obs.state_vector(), action=sent.action, reward=float(done),
                          success_prob=float(done), intervention=operator, policy_version=policy_version, terminal=last and done,
                          truncated=last and not done, timestamp=obs.timestamp)
        steps += 1
        if last:
            break
    success = success_at is not None and bool(scene.success(task.id))
    recorder.meta.extra["ground_truth"] = success
    eid = recorder.commit(outcome="success" if success else "failure", source="scripted")
    return eid, success, steps


def collect_prior_data(store, scene_name: str, robot_id: str, cfg: PriorDataConfig, seed: int = 0,
                       image_size: int = 64, cameras: tuple[str, ...] = ("front",), progress: bool = True,
                       resume: bool = False) -> dict:
    """Collect the prior data of ``cfg`` into ``store`` under ``robot_id``; returns counts.

    ``resume``: the store holds an interrupted collection of this same ``cfg``; only what it lacks
    is collected (counted in "kept"), from other random starts than the first try's.
    """
    from hardware.sim.scenes import make_scene

    counts = {"kept": 0, "demos": 0, "failures": 0, "noisy_successes": 0, "other": 0, "expert_failures": 0}
    jobs = [(scene_name, "demo")] + ([(cfg.other_scene, "other")] if cfg.other_scene and cfg.other_episodes_per_task else [])
    groups = {name: f"{robot_id}-{name}" if kind == "other" else robot_id for name, kind in jobs}
    have = {name: _collected(store, group) if resume and group in store.robots() else {} for name, group in groups.items()}
    kept = sum(n for h in have.values() for n in h.values())
    total = (cfg.demos_for(0) + cfg.demos_for(1) + 2 * cfg.failures_per_task
             + (2 * cfg.other_episodes_per_task if len(jobs) > 1 else 0))
    bar = tqdm(total=total, initial=min(kept, total), desc="prior data (episodes)", disable=not progress, unit="ep")
    # a resumed collection must not replay the first try's starts: seed it apart
    rng = np.random.default_rng([seed, kept] if kept else seed)
    counts["kept"] = kept
    for name, kind in jobs:
        scene = make_scene(name, seed=seed, image_size=image_size, cameras=cameras)
        try:
            writer = store.writer(groups[name], {"arm": scene.robot_name, "scene": name, "sim": True},
                                  {c: (image_size, image_size) for c in cameras}, scene.proprio_dim)
            horizon = scene.max_episode_steps
            for i, task in enumerate(scene.tasks):
                wanted = (cfg.demos_for(i) if kind == "demo" else cfg.other_episodes_per_task) - have[name].get((task.id, kind), 0)
                made = attempts = 0
                while made < wanted and attempts < wanted * cfg.max_attempts_factor:
                    attempts += 1
                    _, ok = record_expert_episode(scene, writer, task, rng, cfg.expert_noise, horizon, cfg.settle_steps,
                                                  kind=kind, gate=cfg.expert_gate)
                    # An unlucky expert run is still a useful (failure) episode; count it and retry.
                    counts["other" if kind == "other" else ("demos" if ok else "expert_failures")] += 1
                    made += int(ok)
                    bar.update(int(ok))
                if made < wanted:
                    raise RuntimeError(f"the scripted expert of {name}/{task.id} succeeded only {made} of "
                                       f"{attempts} times; the scene or its expert is broken")
                if kind == "demo":
                    short = max(1, int(horizon * cfg.failure_fraction_of_horizon))
                    for _ in range(cfg.failures_per_task - have[name].get((task.id, "failure"), 0)):
                        _, ok = record_expert_episode(scene, writer, task, rng, cfg.failure_noise, short, 0,
                                                      kind="failure", gate=cfg.expert_gate)
                        counts["noisy_successes" if ok else "failures"] += 1
                        bar.update(1)
            writer.close()
        finally:
            scene.close()
    bar.close()
    return counts


def labelled_sim_snapshots(scene_name: str, task_ids: tuple[str, ...], n: int, seed: int = 0, image_size: int = 64,
                           cameras: tuple[str, ...] = ("front",), frames_per_group: int = 50,
                           near_miss_share: float = 0.3, session_layout_share: float = 0.0,
                           home_share: float = 0.0, progress: bool = True) -> list:
    """Success-classifier frames of varied sim states, labelled for every task by the simulator.

    Demonstrations only show a finished task at their end, right after the release; online the
    classifier must also say "done" with the arm anywhere else (homing, or retrying a task that is
    already done), and "not done" when the policy mimics a release without the object: an empty
    gripper lowered into the bowl fooled a classifier trained on demos alone, and the policy
    learned to do just that for its reward. Each snapshot starts from a fresh randomised scene;
    ``near_miss_share`` of them are near misses (``scene.stage_near_miss``: the object just short
    of the goal, e.g. the cube beside the bowl, and the arm reaching empty-handed into the goal:
    the policy's failure behind 14 of 19 false successes in one online run); of the rest, half run the scripted expert of a random task for a random number of steps
    (untouched, object in the gripper, solved), half reach with a random gripper opening toward an
    object (often the place target: the decoys) or a random point, at a random height; then up to
    4 random actions.
    ``session_layout_share`` of the snapshots start from the layout a sim session with this
    ``seed`` runs in (``make_scene(scene_name, seed)``: where the bowl stands, colours, light,
    camera pose), which every online frame of that session shows, instead of a fresh one: the
    lab's own workspace, where a real robot's classifier examples come from too.
    ``home_share`` of them end with the arm put home the way the actor does before it judges a
    success (``home_like_the_actor``): the actor confirms every "done" from there, and a
    classifier that had hardly seen that view rejected 8 of the 35 true forward successes in a
    session's first 40 forward episodes (p 0.85 to 0.93 against its threshold), and 10 of 280 in
    another; with 20 % of them, none of 130 (and 28 false ones) in a run.
    One frame per camera, tiled like the classifier sees them (``reward_vlm.tile_views``). These
    frames train the classifier only: they are not episodes and never reach the replay buffer.

    Returns ``reward_vlm.Episode``s: per group of ``frames_per_group`` snapshots one per task, with
    per-frame labels ``scene.success(task)``; a group's episodes share ``group`` so a train/holdout
    split keeps them together.
    """
    from hardware.safety import ACTION_DIM
    from hardware.sim.scenes import make_scene
    from reward_vlm import Episode, tile_views

    rng = np.random.default_rng([seed, 0x5A4])  # a stream apart from the prior data's
    frames, labels = [], []
    scene = make_scene(scene_name, seed=seed, image_size=image_size, cameras=cameras)
    try:
        for i in tqdm(range(n), desc="classifier snapshots", disable=not progress, unit="frame"):
            task = task_ids[i % len(task_ids)]
            if rng.random() < session_layout_share:
                scene.randomize(np.random.default_rng(seed))  # as the session's scene builds itself
            else:
                scene.randomize(rng, task_id=task)
            goal = scene.stage_near_miss(task, rng) if rng.random() < near_miss_share else None
            if goal is not None:
                _reach(scene, _over(scene, goal, rng), float(rng.choice([1.0, 0.3, -1.0])), int(rng.integers(3, 20)))
            elif rng.random() < 0.5:
                expert = scene.expert(task, noise=0.1, rng=rng)
                for _ in range(int(rng.integers(0, int(0.75 * scene.max_episode_steps)))):
                    scene.step(expert(scene.observe()))
            else:
                _reach(scene, _reach_target(scene, rng), float(rng.choice([1.0, 0.3, -1.0])), int(rng.integers(3, 20)))
            for _ in range(int(rng.integers(0, 5))):
                scene.step(rng.uniform(-1.0, 1.0, ACTION_DIM).astype(np.float32))
            if home_share and rng.random() < home_share:
                home_like_the_actor(scene)
            images = scene.images()
            frames.append(tile_views([images[c] for c in cameras]))
            labels.append([scene.success(t) for t in task_ids])
    finally:
        scene.close()
    out = []
    for start in range(0, len(frames), frames_per_group):
        chunk = np.stack(frames[start:start + frames_per_group])
        truth = np.array(labels[start:start + frames_per_group], dtype=np.int8)
        out += [Episode(chunk, task, outcome=None, label_source="scripted", frame_labels=truth[:, k], group=("snapshots", start))
                for k, task in enumerate(task_ids)]
    return out


def home_like_the_actor(scene) -> None:
    """Leave the arm where the actor checks a success from: its homing (``homing_steps``) with
    one tick at the reset pose, the first frame it is judged on."""
    from robot_stack.session.actor_loop import HOME_POSE, ActorConfig, homing_steps

    for step in homing_steps(ActorConfig(), ticks=1):
        if step is HOME_POSE:
            scene.arm.move_to("reset")
        else:
            scene.step(step)


def _reach_target(scene, rng: np.random.Generator) -> np.ndarray:
    """A base-frame point to reach: over one of the scene's objects (mostly) or anywhere in its area, at any height."""
    objects = [np.asarray(v)[:2] for v in scene.privileged().values()]
    if rng.random() < 0.8:
        return _over(scene, objects[int(rng.integers(len(objects)))], rng)
    lo, hi = scene.area()
    return _over(scene, rng.uniform(lo, hi), rng, spread=0.0)


def _over(scene, xy: np.ndarray, rng: np.random.Generator, spread: float = 0.01) -> np.ndarray:
    """``(3,)`` base-frame point near ``xy`` (normal jitter of ``spread`` m, scaled with the robot), at a random height."""
    s = scene.robot.object_scale
    xy = np.asarray(xy) + (rng.normal(0.0, spread * s, 2) if spread else 0.0)
    return np.array([xy[0], xy[1], rng.uniform(scene.robot.tcp_to_tip, 0.1 * s)])


def _reach(scene, target: np.ndarray, gripper: float, steps: int) -> None:
    """Move the tool toward ``target`` (orientation kept) with a fixed gripper command."""
    from hardware.safety import ACTION_DIM

    limit = scene.arm.config.max_translation_m
    for _ in range(steps):
        a = np.zeros(ACTION_DIM, np.float32)
        a[:3] = np.clip((target - scene.observe().ee_pose[:3]) / limit, -1.0, 1.0)
        a[-1] = gripper
        scene.step(a)
