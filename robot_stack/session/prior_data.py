"""Prior data for a simulated session: scripted-expert episodes written to the episode store.

What RoboFuME pre-trains on, made in sim: successful forward and backward demonstrations, failure
episodes (the expert with heavy noise, cut short), and optionally episodes of *other* tasks from
another scene as generic prior data. Each episode starts from a randomised scene in which its
task is not yet solved. After the first success the recording goes on for ``settle_steps`` more
steps with the expert's own actions, so the frames that show the finished task are in the store
(the success classifier learns from an episode's last frames).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm


@dataclass
class PriorDataConfig:
    """How much scripted prior data to collect."""

    demos_per_task: int = 20  # successful expert episodes per task of the pair
    failures_per_task: int = 8  # failure episodes per task (heavy noise, cut short)
    expert_noise: float = 0.1  # action noise of the demonstrating expert
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
        if not 0 < self.failure_fraction_of_horizon <= 1:
            raise ValueError(f"failure_fraction_of_horizon must be in (0, 1], got {self.failure_fraction_of_horizon}")
        if self.expert_noise < 0 or self.failure_noise < 0:
            raise ValueError("expert_noise and failure_noise must be >= 0")
        if self.max_attempts_factor < 1:
            raise ValueError(f"max_attempts_factor must be >= 1, got {self.max_attempts_factor}")


def record_expert_episode(scene, writer, task, rng: np.random.Generator, noise: float, max_steps: int,
                          settle_steps: int, data_source: str = "prior") -> tuple[str | None, bool]:
    """Run ``scene.expert`` for ``task`` from a randomised start and commit it to ``writer``.

    Returns (episode id, success). Reward is 1 on steps after which the task is done (sparse);
    the last step is terminal on success, truncated otherwise.
    """
    from robot_stack.store import EpisodeMeta

    scene.randomize(rng, task_id=task.id)
    expert = scene.expert(task.id, noise=noise, rng=rng)
    recorder = writer.begin_episode(EpisodeMeta(task_id=task.id, instruction=task.instruction, phase=task.phase,
                                                data_source=data_source,
                                                extra={"scene": scene.name, "expert_noise": noise}))
    success_at, steps = None, 0
    for t in range(max_steps + settle_steps):
        obs = scene.observe()
        images = scene.images()
        sent = scene.step(expert(obs))
        done = scene.success(task.id)
        if done and success_at is None:
            success_at = t
        last = (success_at is not None and t - success_at >= settle_steps) or t == max_steps - 1 and success_at is None
        recorder.add_step(images=images, state=obs.state_vector(), action=sent.action, reward=float(done),
                          success_prob=float(done), terminal=bool(last and done), truncated=bool(last and not done),
                          timestamp=obs.timestamp)
        steps += 1
        if last:
            break
    success = success_at is not None and scene.success(task.id)
    eid = recorder.commit(outcome="success" if success else "failure", source="scripted")
    return eid, success


def collect_prior_data(store, scene_name: str, robot_id: str, cfg: PriorDataConfig, seed: int = 0,
                       image_size: int = 64, cameras: tuple[str, ...] = ("front",), progress: bool = True) -> dict:
    """Collect the prior data of ``cfg`` into ``store`` under ``robot_id``; returns counts."""
    from hardware.sim.scenes import make_scene

    counts = {"demos": 0, "failures": 0, "noisy_successes": 0, "other": 0, "expert_failures": 0}
    jobs = [(scene_name, "demo")] + ([(cfg.other_scene, "other")] if cfg.other_scene and cfg.other_episodes_per_task else [])
    total = 2 * (cfg.demos_per_task + cfg.failures_per_task) + (2 * cfg.other_episodes_per_task if len(jobs) > 1 else 0)
    bar = tqdm(total=total, desc="prior data (episodes)", disable=not progress, unit="ep")
    rng = np.random.default_rng(seed)
    for name, kind in jobs:
        scene = make_scene(name, seed=seed, image_size=image_size, cameras=cameras)
        try:
            writer = store.writer(f"{robot_id}-{name}" if kind == "other" else robot_id,
                                  {"arm": scene.robot_name, "scene": name, "sim": True},
                                  {c: (image_size, image_size) for c in cameras}, scene.proprio_dim)
            horizon = scene.max_episode_steps
            for task in scene.tasks:
                wanted = cfg.demos_per_task if kind == "demo" else cfg.other_episodes_per_task
                made = attempts = 0
                while made < wanted and attempts < wanted * cfg.max_attempts_factor:
                    attempts += 1
                    _, ok = record_expert_episode(scene, writer, task, rng, cfg.expert_noise, horizon, cfg.settle_steps)
                    # An unlucky expert run is still a useful (failure) episode; count it and retry.
                    counts["other" if kind == "other" else ("demos" if ok else "expert_failures")] += 1
                    made += int(ok)
                    bar.update(int(ok))
                if made < wanted:
                    raise RuntimeError(f"the scripted expert of {name}/{task.id} succeeded only {made} of "
                                       f"{attempts} times; the scene or its expert is broken")
                if kind == "demo":
                    short = max(1, int(horizon * cfg.failure_fraction_of_horizon))
                    for _ in range(cfg.failures_per_task):
                        _, ok = record_expert_episode(scene, writer, task, rng, cfg.failure_noise, short, 0)
                        counts["noisy_successes" if ok else "failures"] += 1
                        bar.update(1)
            writer.close()
        finally:
            scene.close()
    bar.close()
    return counts
