"""The acting side: observation in, a safe action out (what the actor node runs)."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from policies.batch import observation_to_batch, to_pixels
from policies.config import LearnerConfig
from policies.networks import ObservationEncoder, TanhGaussianActor


class Agent:
    """Encoder + tanh-Gaussian actor in inference mode.

    ``act(obs, deterministic)``: ``obs`` = {"image": (H,W,3) uint8 or {cam: (H,W,3)}, "state":
    (S,) float, "task": int} (or the same with a leading batch axis) -> action float32 (A,) (or
    (B, A)), every entry finite and in [-1, 1] (a non-finite network output raises rather than
    reaching an arm). A policy of ``network.action_chunk`` h > 1 returns the next h actions,
    (h, A) (or (B, h, A)), to run open loop. ``version`` is the policy version to stamp on recorded transitions.

    ``critic`` (a ``CriticEnsemble``; a learner's agent has one, a checkpoint's does not) with
    ``best_of`` K > 1 makes the deterministic action the best, by the ensemble's minimum Q, of the
    mode and K samples: a probe of whether the critic ranks the actor's own actions (a critic that
    cannot pick better actions than the actor's mean cannot teach the actor either).
    """

    def __init__(self, config: LearnerConfig, encoder: ObservationEncoder, actor: TanhGaussianActor, *, version: int = 0, device=None,
                 critic: torch.nn.Module | None = None):
        self.config = config
        self.encoder = encoder
        self.actor = actor
        self.critic = critic
        self.best_of = 0  # > 1 (needs ``critic``): deterministic actions picked by Q among the mode and this many samples
        self.version = int(version)
        self.device = torch.device(device) if device is not None else next(actor.parameters()).device

    @classmethod
    def build(cls, config: LearnerConfig, task_embeddings=None, device="cpu") -> "Agent":
        """Fresh (untrained) networks; ``load_weights`` fills them."""
        enc = ObservationEncoder(config.network, task_embeddings)
        net = config.network
        actor = TanhGaussianActor(enc.output_dim, net.chunk_dim, net.hidden_dims, net.log_std_min, net.log_std_max)
        return cls(config, enc.to(device).eval(), actor.to(device).eval(), device=device)

    def load_weights(self, encoder_state: Mapping[str, torch.Tensor], actor_state: Mapping[str, torch.Tensor], version: int) -> None:
        """Swap weights (call at an episode boundary); strict: every key must match."""
        self.encoder.load_state_dict(encoder_state, strict=True)
        self.actor.load_state_dict(actor_state, strict=True)
        self.version = int(version)

    @classmethod
    def from_checkpoint(cls, path, device="cpu") -> "Agent":
        """Load the policy of a checkpoint directory (a ``policy-NNNNNN`` folder, or a checkpoint
        root whose ``latest`` pointer is followed)."""
        from policies.checkpoint import load_agent

        return load_agent(path, device=device)

    def reload_if_newer(self, checkpoint_root) -> bool:
        """Load the checkpoint ``latest`` points at if it is newer than ``self.version``.

        Call at an episode boundary (the actor stamps ``version`` on every transition). A
        checkpoint of a different network shape or a corrupt one raises and leaves the current
        weights in place. Returns whether new weights were loaded.
        """
        from policies.checkpoint import CheckpointManager, load_agent

        latest = CheckpointManager(checkpoint_root).latest_version()
        if latest is None or latest <= self.version:
            return False
        fresh = load_agent(checkpoint_root, device=self.device)
        self.load_weights(fresh.encoder.state_dict(), fresh.actor.state_dict(), fresh.version)
        return True

    def _features(self, obs: Mapping) -> tuple[torch.Tensor, bool]:
        """(features (B, F), whether ``obs`` came without a batch axis); checks sizes and task ids."""
        net = self.config.network
        image, state, task, unbatched = observation_to_batch(obs, net.image_keys, net.state_dim, self.device)
        if image is not None:
            side = net.encoder.image_size
            if image.shape[1] != side or image.shape[2] != side:
                raise ValueError(f"observation images are {tuple(image.shape[1:3])}, the policy expects {side}x{side}")
        if int(task.max()) >= net.num_tasks or int(task.min()) < 0:
            raise ValueError(f"task id {task.tolist()} out of range [0, {net.num_tasks})")
        pixels = to_pixels(image, self.config.channels_last) if image is not None else None
        return self.encoder(pixels, state, task), unbatched

    @torch.inference_mode()
    def act(self, obs: Mapping, deterministic: bool = False) -> np.ndarray:
        feats, unbatched = self._features(obs)
        if deterministic and self.best_of > 1:
            action = self._best_by_q(feats, self.best_of)
        elif deterministic:
            action = self.actor.mode(feats)
        else:
            action, _ = self.actor.sample(feats)
        out = self._chunks(_safe_actions(action))
        return out[0] if unbatched else out

    @torch.inference_mode()
    def scored_candidates(self, obs: Mapping, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The actor's mode and ``k`` samples at one observation (no batch axis), clipped to
        [-1, 1] as ``act`` returns them, with the critic's min-Q of each: actions (k + 1, A)
        float32 (row 0 the mode; (k + 1, h, A) for chunks of h) and Q (k + 1,) float32. Needs ``critic``."""
        feats, unbatched = self._features(obs)
        if not unbatched:
            raise ValueError("scored_candidates takes one observation, without a batch axis")
        candidates, q = self._candidates(feats, k)
        return self._chunks(_safe_actions(candidates[0])), q[0].float().cpu().numpy()

    def _chunks(self, actions: np.ndarray) -> np.ndarray:
        """(..., h*A) -> (..., h, A) for a chunked policy (h > 1); unchanged for h = 1."""
        net = self.config.network
        if net.action_chunk == 1:
            return actions
        return actions.reshape(*actions.shape[:-1], net.action_chunk, net.action_dim)

    def _candidates(self, feats: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per state the mode and ``k`` samples (B, k + 1, A), and their min-Q over the ensemble (B, k + 1)."""
        if self.critic is None:
            raise ValueError("scoring actions by Q (best_of, scored_candidates) needs a critic (a learner's agent); "
                             "a checkpoint's agent has none")
        samples, _ = self.actor.sample(feats, k)  # (B, k, A)
        candidates = torch.cat([self.actor.mode(feats).unsqueeze(1), samples], dim=1)  # (B, k + 1, A)
        return candidates, self.critic(feats, candidates).min(dim=0).values

    def _best_by_q(self, feats: torch.Tensor, k: int) -> torch.Tensor:
        """(B, A): per state, the action among the mode and ``k`` samples with the highest min-Q."""
        candidates, q = self._candidates(feats, k)
        return candidates[torch.arange(len(candidates), device=feats.device), q.argmax(dim=1)]


def _safe_actions(action: torch.Tensor) -> np.ndarray:
    """(..., A) tensor -> float32 array in [-1, 1]; raises rather than return a non-finite action."""
    out = action.float().cpu().numpy()
    if not np.isfinite(out).all():
        raise FloatingPointError("policy produced a non-finite action; refusing to return it")
    return np.clip(out, -1.0, 1.0).astype(np.float32)
