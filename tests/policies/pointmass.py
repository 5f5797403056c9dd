"""A tiny numpy point-mass reach task (forward/backward goal pair) with a scripted expert.

A plain module beside the tests (conftest.py puts this folder on sys.path)."""

from __future__ import annotations

import numpy as np

GOALS = np.array([[0.6, 0.6], [-0.6, -0.6]], dtype=np.float32)  # task 0 = forward, task 1 = backward


class PointMass:
    """Vectorised 2-D point mass: state = position in [-1, 1]^2, action (2,) in [-1, 1] moves it
    by 0.1 * action; reward 1 and terminal within 0.2 of the task's goal; 25-step horizon."""

    horizon = 25
    step_size = 0.1
    radius = 0.2

    def __init__(self, n: int, rng: np.random.Generator, task: np.ndarray | int = 0):
        self.rng = rng
        self.pos = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
        self.task = np.broadcast_to(np.asarray(task), (n,)).astype(np.int64).copy()

    def reached(self) -> np.ndarray:
        return np.linalg.norm(self.pos - GOALS[self.task], axis=1) < self.radius

    def step(self, action: np.ndarray) -> None:
        self.pos = np.clip(self.pos + self.step_size * np.clip(action, -1, 1), -1, 1).astype(np.float32)

    def expert(self, noise: float) -> np.ndarray:
        direction = (GOALS[self.task] - self.pos) / self.step_size
        return np.clip(direction + noise * self.rng.normal(size=direction.shape), -1, 1).astype(np.float32)


def collect(rng: np.random.Generator, episodes: int, mode: str, noise: float = 0.3) -> list[dict]:
    """Episodes (replay-contract dicts) from the scripted expert ("expert") or uniform random actions."""
    out = []
    for i in range(episodes):
        env = PointMass(1, rng, task=i % 2)
        states, actions, rewards = [], [], []
        terminal = False
        for _ in range(env.horizon):
            states.append(env.pos[0].copy())
            a = env.expert(noise)[0] if mode == "expert" else rng.uniform(-1, 1, 2).astype(np.float32)
            env.step(a[None])
            actions.append(a)
            terminal = bool(env.reached()[0])
            rewards.append(float(terminal))
            if terminal:
                break
        T = len(actions)
        out.append({
            "state": np.array(states), "action": np.array(actions), "reward": np.array(rewards, np.float32),
            "terminal": np.r_[np.zeros(T - 1), terminal].astype(bool), "truncated": np.r_[np.zeros(T - 1), not terminal].astype(bool),
            "task": np.full(T, i % 2), "final_state": env.pos[0].copy(),
        })
    return out


def success_rate(act, episodes: int = 200, seed: int = 123) -> float:
    """Fraction of episodes (half per task) where ``act(obs_batch) -> (B, 2)`` reaches the goal;
    an ``act`` that returns chunks (B, h, 2) has each chunk run open loop, h steps."""
    rng = np.random.default_rng(seed)
    env = PointMass(episodes, rng, task=np.arange(episodes) % 2)
    done = np.zeros(episodes, bool)
    t = 0
    while t < env.horizon:
        a = act({"state": env.pos.copy(), "task": env.task})
        assert a.shape[0] == episodes and a.shape[-1] == 2 and np.isfinite(a).all() and np.abs(a).max() <= 1
        chunk = a[:, None] if a.ndim == 2 else a  # (B, h, 2)
        for i in range(chunk.shape[1]):
            if t == env.horizon:
                break
            step = chunk[:, i].copy()
            step[done] = 0
            env.step(step)
            done |= env.reached()
            t += 1
    return float(done.mean())
