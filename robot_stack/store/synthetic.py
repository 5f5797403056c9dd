"""Sim-like synthetic episodes for tests and benchmarks (no simulator needed).

Images look like a rendered tabletop scene, not noise: a smoothly lit table and wall, a
shaded bowl, a shaded cube and a gripper that move smoothly over time (no sensor noise, as a renderer's
8-bit output). Compression numbers measured on these are
meaningful for simulated cameras; real camera noise compresses worse.
"""

from __future__ import annotations

import numpy as np


def sim_like_images(n_frames: int, height: int = 128, width: int = 128, seed: int = 0) -> np.ndarray:
    """(n_frames, height, width, 3) uint8 frames of a smoothly moving tabletop scene."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy /= height
    xx /= width
    horizon = 0.35 + 0.05 * rng.random()
    light = np.array([0.6 + 0.2 * rng.random(), 0.3 * rng.random()], dtype=np.float32)
    # Static background: wall above the horizon, table below, both lit by one soft light.
    shade = 1.0 - 0.6 * ((xx - light[0]) ** 2 + (yy - light[1]) ** 2)
    wall = np.stack([0.75, 0.78, 0.82]).astype(np.float32)
    table = np.stack([0.55, 0.42, 0.30]).astype(np.float32) * (0.9 + 0.1 * rng.random())
    bg = np.where((yy < horizon)[..., None], wall, table) * shade[..., None]
    bowl_c = np.array([0.3 + 0.4 * rng.random(), 0.65 + 0.1 * rng.random()], dtype=np.float32)
    out = np.empty((n_frames, height, width, 3), dtype=np.uint8)
    phase = rng.random() * 6.28
    for t in range(n_frames):
        img = bg.copy()
        # Bowl: a shaded ring (darker inside).
        d = np.sqrt(((xx - bowl_c[0]) / 1.6) ** 2 + (yy - bowl_c[1]) ** 2)
        ring = (d < 0.09) & (d > 0.055)
        inner = d <= 0.055
        img[ring] = np.array([0.2, 0.45, 0.75]) * (1.1 - 3 * d[ring])[:, None]
        img[inner] = np.array([0.15, 0.3, 0.55]) * (0.9 - 2 * d[inner])[:, None]
        # Cube: moves along a smooth path; lit face gradient.
        s = t / max(1, n_frames - 1)
        cx = 0.25 + 0.5 * s + 0.03 * np.sin(phase + 6 * s)
        cy = 0.55 + 0.15 * np.cos(phase + 3 * s)
        cube = (np.abs(xx - cx) < 0.045) & (np.abs(yy - cy) < 0.045)
        img[cube] = np.array([0.85, 0.15, 0.12]) * (1.0 - 2.5 * (yy[cube] - cy + 0.045))[:, None]
        # Gripper: two grey fingers above the cube, a shaded bar.
        gx, gy = cx + 0.01 * np.sin(9 * s), cy - 0.12
        arm = (np.abs(xx - gx) < 0.025) & (yy < gy)
        img[arm] = np.array([0.5, 0.5, 0.52]) * (0.8 + 0.6 * (xx[arm] - gx + 0.025))[:, None]
        out[t] = np.clip(img * 255.0, 0, 255).astype(np.uint8)
    return out


def synthetic_episode(
    n_steps: int,
    cameras: dict[str, tuple[int, int]],
    state_dim: int,
    action_dim: int = 7,
    seed: int = 0,
    intervention_span: tuple[int, int] | None = None,
    success: bool = True,
) -> list[dict]:
    """A list of ``add_step`` keyword dicts for one episode (images from :func:`sim_like_images`)."""
    rng = np.random.default_rng(seed)
    imgs = {c: sim_like_images(n_steps, h, w, seed=seed * 31 + i) for i, (c, (h, w)) in enumerate(cameras.items())}
    state = np.cumsum(rng.normal(0, 0.01, size=(n_steps, state_dim)), axis=0).astype(np.float32)
    action = np.clip(rng.normal(0, 0.3, size=(n_steps, action_dim)), -1, 1).astype(np.float32)
    steps = []
    for t in range(n_steps):
        last = t == n_steps - 1
        steps.append(dict(
            images={c: imgs[c][t] for c in cameras},
            state=state[t],
            action=action[t],
            reward=float(last and success),
            success_prob=float(0.9 if (last and success) else 0.05),
            intervention=bool(intervention_span and intervention_span[0] <= t < intervention_span[1]),
            policy_version=seed % 3,
            timestamp=1000.0 + t * 0.2,
            terminal=bool(last and success),
            truncated=bool(last and not success),
        ))
    return steps
