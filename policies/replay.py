"""In-memory replay for the learner: episodes in, batches of transitions out (numpy only).

Contract (COMMON.md "Replay batches"): ``ReplayBuffer.add_episode(arrays)`` takes time-major
arrays of one episode; ``sample(batch_size, rng)`` returns a dict of batch-major arrays with
``done`` = terminal only (a truncated step is NOT done) and ``mc_return`` = the Cal-QL
Monte-Carlo return-to-go computed once per episode at add time (a policy step that a person
later took over from counts as a failure's: the success was the correction's).

Storage is a ring of preallocated slots. An episode of T steps takes T+1 contiguous slots (its
observations o_0..o_T) so that ``next`` is always slot+1; the slot of o_T holds no transition.
Images stay uint8 until the learner converts them on its device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

import numpy as np

ACTION_DIM = 7


@dataclass
class ReplayConfig:
    """Sizes and return-to-go settings of one replay buffer."""

    capacity: int = 200_000  # transitions (steps) kept; the oldest whole episodes are evicted first
    gamma: float = 0.99  # discount of the Monte-Carlo return-to-go (use the learner's gamma)
    reward_neg: float = 0.0  # the sparse reward of a failed step (Cal-QL r_neg): all-failure episodes get r_neg/(1-gamma)
    sparse_reward: bool = True  # apply Cal-QL's all-failure rule (every reward == reward_neg -> r_neg/(1-gamma))
    truncation_tail: Literal["failure", "zero"] = "failure"  # value after a truncated end: "failure" = r_neg/(1-gamma) forever (a lower bound), "zero"
    end_at_first_success: bool = True  # sparse rewards: an episode's transitions end at its first rewarded step (terminal there), as a classifier-ended online episode does; steps recorded after it (e.g. a scripted demo's settle frames, kept for the classifier) are dropped
    action_chunk: int = 1  # steps one sampled transition spans: its action is the next this-many actions, its reward their discounted sum, its next observation the one after them (a learner's loader sets it, and gamma, from the policy)

    def __post_init__(self) -> None:
        if self.capacity < 2:
            raise ValueError(f"replay.capacity must be >= 2, got {self.capacity!r}")
        if not 0.0 < self.gamma < 1.0:
            raise ValueError(f"replay.gamma must be in (0, 1), got {self.gamma!r}")
        if self.truncation_tail not in ("failure", "zero"):
            raise ValueError(f"replay.truncation_tail must be 'failure' or 'zero', got {self.truncation_tail!r}")
        if self.action_chunk < 1:
            raise ValueError(f"replay.action_chunk must be >= 1, got {self.action_chunk!r}")


def mc_return_to_go(
    reward: np.ndarray,
    gamma: float,
    *,
    terminal_end: bool,
    reward_neg: float = 0.0,
    sparse_reward: bool = True,
    truncation_tail: str = "failure",
    intervention: np.ndarray | None = None,
) -> np.ndarray:
    """Discounted return-to-go of ONE episode, the lower bound Cal-QL clamps Q-values with.

    reward: (T,) rewards r_0..r_{T-1}. Returns (T,) float32 with
    ``G_t = r_t + gamma * G_{t+1}`` and the tail ``G_T``:
      - terminal end: G_T = 0 (nothing follows a terminal state);
      - truncated / unfinished end: G_T = r_neg / (1 - gamma) when ``truncation_tail="failure"``
        (assume the rest of the episode would have failed: a valid lower bound whenever rewards
        are >= r_neg, and what Cal-QL assigns to failures), else 0 (Cal-QL reference code).
    Sparse all-failure episodes (every reward == r_neg) get r_neg / (1 - gamma) at every step,
    as in Cal-QL, whatever the end.

    intervention: optional (T,) bool, the steps a person chose. A policy step that a person later
    had to take over from earned no return of the policy's own (the episode succeeded because of
    the correction), so it gets the failure value r_neg / (1 - gamma) too: counting the rescued
    return made filtered BC imitate exactly the actions the operator corrected, and lifted
    Cal-QL's lower bound on them. Steps after the person lets go keep their return.
    """
    reward = np.asarray(reward, dtype=np.float64)
    if reward.ndim != 1:
        raise ValueError(f"reward must be (T,), got shape {reward.shape}")
    fail_value = reward_neg / (1.0 - gamma)
    if sparse_reward and reward.size and np.all(np.isclose(reward, reward_neg)):
        return np.full(reward.shape, fail_value, dtype=np.float32)
    tail = 0.0 if terminal_end or truncation_tail == "zero" else fail_value
    out = np.empty_like(reward)
    running = tail
    for t in range(reward.size - 1, -1, -1):
        running = reward[t] + gamma * running
        out[t] = running
    if intervention is not None:
        intervention = np.asarray(intervention, dtype=bool)
        corrected = ~intervention & (np.cumsum(intervention[::-1])[::-1] > 0)
        out[corrected] = fail_value
    return out.astype(np.float32)


def _as_array(arrays: Mapping, key: str, length: int, dtype, *, required: bool = True, default=None) -> np.ndarray:
    if key not in arrays or arrays[key] is None:
        if required:
            raise ValueError(f"episode is missing {key!r}")
        return np.full(length, default, dtype=dtype)
    value = np.asarray(arrays[key])
    if value.shape[:1] != (length,):
        raise ValueError(f"episode {key!r} has {value.shape[:1] or 'no'} steps, expected {length} (time-major)")
    return value.astype(dtype, copy=False)


class ReplayBuffer:
    """Ring buffer of transitions from whole episodes; see the module docstring for the layout.

    ``demo_buffer``: HIL-SERL intervention routing - every step where a person intervened is
    ALSO added to this buffer (as contiguous segments), so a ``MixedReplay`` can sample
    demonstrations alongside the RL data.
    """

    def __init__(self, config: ReplayConfig | None = None, *, demo_buffer: "ReplayBuffer | None" = None, **kwargs):
        self.config = config or ReplayConfig(**kwargs)
        if config is not None and kwargs:
            raise ValueError("pass either a ReplayConfig or keyword fields, not both")
        self.demo_buffer = demo_buffer
        self._slots = self.config.capacity + 1
        self._allocated = False
        self._cursor = 0
        self._episodes: list[tuple[int, int]] = []  # (start slot, number of slots) of live episodes, oldest first
        self._valid_idx = np.zeros(0, dtype=np.int64)
        self.episodes_added = 0
        self.steps_added = 0

    # ---- properties ----------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of transitions that can be sampled now."""
        return int(self._valid_idx.size)

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    @property
    def image_keys(self) -> tuple[str, ...]:
        return tuple(self._images) if self._allocated else ()

    # ---- adding --------------------------------------------------------------------------
    def add_episode(self, arrays: Mapping) -> int:
        """Add one episode; returns the number of sampleable transitions it added.

        arrays (time-major, T steps): ``state (T,S)``, ``action (T,A)``, ``reward (T,)``,
        ``terminal (T,)``, ``truncated (T,)``, optional ``intervention (T,)`` (default False),
        ``task (T,) int`` (default 0), images as ``image: {cam: (T,H,W,3) uint8}`` or
        ``image (T,H,W,3)`` (camera "image"), and optionally the observation after the last
        step as ``final_state (S,)`` / ``final_image`` (same form as ``image``, no T axis).
        Only the last step may be terminal or truncated. An episode that ends neither terminal
        nor truncated is treated as truncated. A truncated last step is sampled only when the
        final observation is given (else nothing to bootstrap from); its mc_return still counts.
        Intervention steps are also copied to ``demo_buffer`` when there is one.
        """
        action = np.asarray(arrays["action"], dtype=np.float32) if "action" in arrays else None
        if action is None or action.ndim != 2:
            raise ValueError(f"episode 'action' must be (T, A), got {None if action is None else action.shape}")
        T = action.shape[0]
        if T == 0:
            raise ValueError("episode has no steps")
        if not np.isfinite(action).all():
            raise ValueError("episode 'action' contains NaN/inf")
        state = _as_array(arrays, "state", T, np.float32)
        if state.ndim != 2:
            raise ValueError(f"episode 'state' must be (T, S), got {state.shape}")
        reward = _as_array(arrays, "reward", T, np.float32)
        if not np.isfinite(reward).all():
            raise ValueError("episode 'reward' contains NaN/inf")
        terminal = _as_array(arrays, "terminal", T, bool)
        truncated = _as_array(arrays, "truncated", T, bool, required=False, default=False)
        intervention = _as_array(arrays, "intervention", T, bool, required=False, default=False)
        task = _as_array(arrays, "task", T, np.int64, required=False, default=0)
        if terminal[:-1].any() or truncated[:-1].any():
            raise ValueError("only the last step of an episode may be terminal or truncated")
        if terminal[-1] and truncated[-1]:
            raise ValueError("the last step is both terminal and truncated; pick one")
        images = self._episode_images(arrays, T)
        cfg = self.config

        final_state = arrays.get("final_state")
        has_final = final_state is not None
        if has_final:
            final_state = np.asarray(final_state, dtype=np.float32).reshape(1, -1)
            final_images = self._final_images(arrays.get("final_image"), images)
        else:
            final_state = state[-1:]
            final_images = {k: v[-1:] for k, v in images.items()}
        hits = np.flatnonzero(reward > cfg.reward_neg) if cfg.sparse_reward and cfg.end_at_first_success else []
        if len(hits) and hits[0] < T - 1:
            # Rewarded steps after the first would tell the critic that lingering in success is
            # worth several rewards where online episodes (ended by the classifier) give one.
            T = int(hits[0]) + 1
            final_state, final_images, has_final = state[T:T + 1], {k: v[T:T + 1] for k, v in images.items()}, True
            state, action, reward, intervention, task = state[:T], action[:T], reward[:T], intervention[:T], task[:T]
            images = {k: v[:T] for k, v in images.items()}
            terminal, truncated = np.arange(T) == T - 1, np.zeros(T, dtype=bool)
        obs_state = np.concatenate([state, final_state], axis=0)
        obs_images = {k: np.concatenate([v, final_images[k]], axis=0) for k, v in images.items()}

        mc = mc_return_to_go(
            reward, cfg.gamma, terminal_end=bool(terminal[-1]), reward_neg=cfg.reward_neg,
            sparse_reward=cfg.sparse_reward, truncation_tail=cfg.truncation_tail, intervention=intervention,
        )
        sampleable = np.ones(T, dtype=bool)
        if not terminal[-1] and not has_final:
            sampleable[-1] = False
        added = self._write(obs_images, obs_state, action, reward, terminal, mc, task, intervention, sampleable)
        self.episodes_added += 1
        self.steps_added += T

        if self.demo_buffer is not None and intervention.any():
            self._route_interventions(obs_images, obs_state, action, reward, terminal, mc, task, intervention, sampleable)
        return added

    def _route_interventions(self, obs_images, obs_state, action, reward, terminal, mc, task, intervention, sampleable):
        """Copy each contiguous intervention segment [a, b) to the demo buffer (with o_a..o_b)."""
        edges = np.flatnonzero(np.diff(np.concatenate([[0], intervention.astype(np.int8), [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            self.demo_buffer._write(
                {k: v[a : b + 1] for k, v in obs_images.items()}, obs_state[a : b + 1], action[a:b], reward[a:b],
                terminal[a:b], mc[a:b], task[a:b], intervention[a:b], sampleable[a:b],
            )
            self.demo_buffer.episodes_added += 1
            self.demo_buffer.steps_added += int(b - a)

    def _episode_images(self, arrays: Mapping, T: int) -> dict[str, np.ndarray]:
        raw = arrays.get("image")
        if raw is None:
            images = {}
        elif isinstance(raw, Mapping):
            images = {str(k): np.asarray(v) for k, v in raw.items()}
        else:
            images = {"image": np.asarray(raw)}
        for cam, img in images.items():
            if img.dtype != np.uint8 or img.ndim != 4 or img.shape[0] != T or img.shape[-1] != 3:
                raise ValueError(f"episode image {cam!r} must be (T={T}, H, W, 3) uint8, got {img.shape} {img.dtype}")
        if self._allocated and set(images) != set(self._images):
            raise ValueError(f"episode cameras {sorted(images)} differ from the buffer's {sorted(self._images)}")
        return images

    @staticmethod
    def _final_images(raw, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not images:
            return {}
        if raw is None:
            raise ValueError("episode gives final_state but no final_image")
        raw = raw if isinstance(raw, Mapping) else {"image": raw}
        out = {}
        for cam, img in images.items():
            final = np.asarray(raw[cam]) if cam in raw else None
            if final is None or final.shape != img.shape[1:] or final.dtype != np.uint8:
                raise ValueError(f"final_image {cam!r} must be {img.shape[1:]} uint8")
            out[cam] = final[None]
        return out

    def _allocate(self, obs_images: dict[str, np.ndarray], state_dim: int, action_dim: int) -> None:
        n = self._slots
        # np.zeros maps untouched pages lazily, so a large capacity costs memory only when filled.
        self._images = {k: np.zeros((n, *v.shape[1:]), dtype=np.uint8) for k, v in obs_images.items()}
        self._state = np.zeros((n, state_dim), dtype=np.float32)
        self._action = np.zeros((n, action_dim), dtype=np.float32)
        self._reward = np.zeros(n, dtype=np.float32)
        self._done = np.zeros(n, dtype=np.float32)
        self._mc = np.zeros(n, dtype=np.float32)
        self._task = np.zeros(n, dtype=np.int64)
        self._intervention = np.zeros(n, dtype=bool)
        self._sampleable = np.zeros(n, dtype=bool)
        self._span = np.zeros(n, dtype=np.int64)  # sampleable transitions in a row from this slot, within its episode
        self._allocated = True

    def _write(self, obs_images, obs_state, action, reward, terminal, mc, task, intervention, sampleable) -> int:
        T = action.shape[0]
        n = T + 1
        if n > self._slots:
            raise ValueError(f"episode of {T} steps does not fit a replay of capacity {self.config.capacity}")
        if not self._allocated:
            self._allocate(obs_images, obs_state.shape[1], action.shape[1])
        if obs_state.shape[1] != self._state.shape[1] or action.shape[1] != self._action.shape[1]:
            raise ValueError(
                f"episode state/action sizes {obs_state.shape[1]}/{action.shape[1]} differ from the buffer's "
                f"{self._state.shape[1]}/{self._action.shape[1]}"
            )
        for k, v in obs_images.items():
            if v.shape[1:] != self._images[k].shape[1:]:
                raise ValueError(f"image {k!r} is {v.shape[1:]}, the buffer holds {self._images[k].shape[1:]}")
        start = self._cursor if self._cursor + n <= self._slots else 0  # never wrap inside an episode
        end = start + n
        # Evict every live episode overlapping [start, end).
        self._episodes = [(s, m) for s, m in self._episodes if s + m <= start or s >= end]
        sl = slice(start, end)
        for k, v in obs_images.items():
            self._images[k][sl] = v
        self._state[sl] = obs_state
        tsl = slice(start, start + T)
        self._action[tsl] = action
        self._reward[tsl] = reward
        self._done[tsl] = terminal
        self._mc[tsl] = mc
        self._task[tsl] = task
        self._intervention[tsl] = intervention
        self._sampleable[sl] = False
        self._sampleable[tsl] = sampleable
        self._span[sl] = 0
        self._span[tsl] = _runs_ahead(sampleable)
        self._episodes.append((start, n))
        self._cursor = end % self._slots
        self._reindex()
        return int(sampleable.sum())

    def _reindex(self) -> None:
        if not self._episodes:
            self._valid_idx = np.zeros(0, dtype=np.int64)
            return
        idx = np.concatenate([np.arange(s, s + m, dtype=np.int64) for s, m in self._episodes])
        self._valid_idx = idx[self._sampleable[idx]]

    # ---- sampling ------------------------------------------------------------------------
    def sample(self, batch_size: int, rng: np.random.Generator) -> dict:
        """Uniformly sample ``batch_size`` transitions (with replacement).

        Returns ``image`` ((B,H,W,3) uint8 for one camera, whatever its name; {cam: (B,H,W,3)}
        for several),
        ``next_image`` (same form), ``state``/``next_state`` (B,S) float32, ``action`` (B,A),
        ``reward`` (B,), ``done`` (B,) float32 (terminal only), ``mc_return`` (B,), ``task`` (B,)
        int64, ``intervention`` (B,) bool. No image keys when the episodes had no images.
        """
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = self._valid_idx[rng.integers(0, self._valid_idx.size, size=batch_size)]
        return self.gather(idx)

    def gather(self, idx: np.ndarray) -> dict:
        """The transitions at slot indices ``idx`` (B,) (vectorised fancy indexing).

        With ``config.action_chunk`` h > 1 each transition spans k = min(h, what is left of its
        episode) steps: ``action`` (B, h*A) holds the next h actions (the last one repeated past
        the episode's end, where nothing is executed), ``reward`` their discounted sum
        r_t + gamma r_{t+1} + ... + gamma^(k-1) r_{t+k-1}, ``done`` whether step t+k-1 is terminal,
        ``next_*`` the observation after step t+k, and the extra key ``steps`` (B,) int64 = k, so
        the learner discounts the bootstrap by gamma^k. ``mc_return``, ``task`` and ``intervention``
        are step t's.
        """
        h = self.config.action_chunk
        if h == 1:
            nxt, last, action, reward = idx + 1, idx, self._action[idx], self._reward[idx]
        else:
            k = np.minimum(self._span[idx], h)  # (B,) >= 1 for a sampleable slot
            offsets = np.minimum(np.arange(h)[None, :], (k - 1)[:, None])  # (B, h) repeat the last step
            cols = idx[:, None] + offsets
            action = self._action[cols].reshape(len(idx), -1)
            live = np.arange(h)[None, :] < k[:, None]
            reward = (self._reward[cols] * live * self.config.gamma ** np.arange(h)[None, :]).sum(1).astype(np.float32)
            last, nxt = idx + k - 1, idx + k
        batch = {
            "state": self._state[idx],
            "next_state": self._state[nxt],
            "action": action,
            "reward": reward,
            "done": self._done[last],
            "mc_return": self._mc[idx],
            "task": self._task[idx],
            "intervention": self._intervention[idx],
        }
        if h > 1:
            batch["steps"] = k.astype(np.int64)
        if self._images:
            if len(self._images) == 1:  # one camera: a plain (B,H,W,3) array, as the contract says
                (only,) = self._images.values()
                batch["image"] = only[idx]
                batch["next_image"] = only[nxt]
            else:
                batch["image"] = {k: v[idx] for k, v in self._images.items()}
                batch["next_image"] = {k: v[nxt] for k, v in self._images.items()}
        return batch


def _runs_ahead(flags: np.ndarray) -> np.ndarray:
    """(T,) bool -> (T,) int64: how many True entries in a row start at each index (0 where False)."""
    out = np.zeros(flags.shape[0], dtype=np.int64)
    run = 0
    for t in range(flags.shape[0] - 1, -1, -1):
        run = run + 1 if flags[t] else 0
        out[t] = run
    return out


def concat_batches(batches: list[dict]) -> dict:
    """Concatenate sampled batches along the batch axis (image dicts per camera)."""
    out = {}
    for key in batches[0]:
        values = [b[key] for b in batches]
        if isinstance(values[0], Mapping):
            out[key] = {cam: np.concatenate([v[cam] for v in values], axis=0) for cam in values[0]}
        else:
            out[key] = np.concatenate(values, axis=0)
    return out


class MixedReplay:
    """Samples several buffers by ratio, e.g. Cal-QL offline/online 0.5/0.5 or RLPD RL/demo 0.5/0.5.

    ``sample`` splits the batch by the ratios (largest-remainder rounding, so counts are exact and
    deterministic); empty sources are skipped and their share goes to the others. The batch gets
    an extra ``source (B,) int64`` key: the index of the source in ``buffers`` order.
    """

    def __init__(self, buffers: Mapping[str, ReplayBuffer], ratios: Mapping[str, float] | None = None):
        if not buffers:
            raise ValueError("MixedReplay needs at least one buffer")
        self.buffers = dict(buffers)
        ratios = dict(ratios) if ratios is not None else {k: 1.0 for k in self.buffers}
        unknown = set(ratios) - set(self.buffers)
        if unknown or set(self.buffers) - set(ratios):
            raise ValueError(f"ratios must name exactly the buffers {sorted(self.buffers)}, got {sorted(ratios)}")
        if any(not np.isfinite(r) or r < 0 for r in ratios.values()) or sum(ratios.values()) <= 0:
            raise ValueError(f"ratios must be finite, >= 0 and not all 0, got {ratios}")
        self.ratios = ratios

    def __len__(self) -> int:
        return sum(len(b) for b in self.buffers.values())

    def counts(self, batch_size: int) -> dict[str, int]:
        """How many samples each source gets in a batch of ``batch_size``."""
        live = {k: r for k, r in self.ratios.items() if r > 0 and len(self.buffers[k]) > 0}
        if not live:
            raise ValueError(f"every source with a non-zero ratio is empty: {sorted(self.ratios)}")
        total = sum(live.values())
        exact = {k: batch_size * r / total for k, r in live.items()}
        counts = {k: int(np.floor(v)) for k, v in exact.items()}
        for k in sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)[: batch_size - sum(counts.values())]:
            counts[k] += 1
        return counts

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict:
        """A batch with the same keys as ``ReplayBuffer.sample`` plus ``source``."""
        names = list(self.buffers)
        parts = []
        for name, n in self.counts(batch_size).items():
            if n == 0:
                continue
            part = self.buffers[name].sample(n, rng)
            part["source"] = np.full(n, names.index(name), dtype=np.int64)
            parts.append(part)
        return concat_batches(parts)
