"""numpy replay batch -> torch tensors on the learner's device, once per batch; DrQ random shift."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch


@dataclass
class TorchBatch:
    """A replay batch on the device. Images stay uint8 (B, H, W, 3*n_cams) until ``pixels()``."""

    image: torch.Tensor | None  # (B, H, W, 3n) uint8
    next_image: torch.Tensor | None  # (B, H, W, 3n) uint8
    state: torch.Tensor | None  # (B, S) float32
    next_state: torch.Tensor | None  # (B, S) float32
    action: torch.Tensor  # (B, A) float32
    reward: torch.Tensor  # (B,) float32
    done: torch.Tensor  # (B,) float32, terminal only
    mc_return: torch.Tensor  # (B,) float32
    task: torch.Tensor  # (B,) int64
    intervention: torch.Tensor | None = None  # (B,) bool: a person chose this action (None = unknown: no)
    steps: torch.Tensor | None = None  # (B,) float32: control steps the transition spans (action chunks; None = 1)

    def __len__(self) -> int:
        return self.action.shape[0]


def stack_cameras(image, image_keys: tuple[str, ...], what: str = "image") -> np.ndarray:
    """(B,H,W,3) or {cam: (B,H,W,3)} -> (B, H, W, 3*len(image_keys)) uint8, cameras in config order."""
    if isinstance(image, Mapping):
        missing = [k for k in image_keys if k not in image]
        if missing:
            raise ValueError(f"batch {what!r} lacks camera(s) {missing}; it has {sorted(image)}")
        arrays = [np.asarray(image[k]) for k in image_keys]
    else:
        if len(image_keys) != 1:
            raise ValueError(f"batch {what!r} is one array but the network expects cameras {list(image_keys)}")
        arrays = [np.asarray(image)]
    for a in arrays:
        if a.dtype != np.uint8 or a.ndim != 4 or a.shape[-1] != 3:
            raise ValueError(f"batch {what!r} must be (B, H, W, 3) uint8 per camera, got {a.shape} {a.dtype}")
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=-1)


def to_torch_batch(batch: Mapping, image_keys: tuple[str, ...], state_dim: int, device: torch.device) -> TorchBatch:
    """Move one sampled batch to ``device`` (uint8 images: 4x less to copy than float)."""
    non_blocking = device.type == "cuda"

    def t(x, dtype):
        x = torch.from_numpy(np.ascontiguousarray(x)).to(dtype)
        if non_blocking:
            x = x.pin_memory()
        return x.to(device, non_blocking=non_blocking)

    image = next_image = None
    if image_keys:
        image = t(stack_cameras(batch["image"], image_keys, "image"), torch.uint8)
        next_image = t(stack_cameras(batch["next_image"], image_keys, "next_image"), torch.uint8)
    state = next_state = None
    if state_dim:
        if batch["state"].shape[-1] != state_dim:
            raise ValueError(f"batch 'state' has {batch['state'].shape[-1]} entries, the network expects {state_dim}")
        state, next_state = t(batch["state"], torch.float32), t(batch["next_state"], torch.float32)
    return TorchBatch(
        image=image,
        next_image=next_image,
        state=state,
        next_state=next_state,
        action=t(batch["action"], torch.float32),
        reward=t(batch["reward"], torch.float32),
        done=t(batch["done"], torch.float32),
        mc_return=t(batch["mc_return"], torch.float32),
        task=t(batch["task"], torch.int64),
        intervention=t(batch["intervention"], torch.bool) if "intervention" in batch else None,
        steps=t(batch["steps"], torch.float32) if "steps" in batch else None,
    )


def random_shift(image: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """DrQ augmentation: shift each image by up to ``pad`` pixels with edge replication.

    image: (B, H, W, C) uint8 (or float). Equivalent to replicate-padding by ``pad`` and taking a
    random HxW crop, done with one gather on clamped indices (no padded copy).
    """
    if pad <= 0:
        return image
    B, H, W, _ = image.shape
    dev = image.device
    shift = torch.randint(0, 2 * pad + 1, (2, B), device=dev, generator=generator) - pad
    ys = (torch.arange(H, device=dev).unsqueeze(0) + shift[0].unsqueeze(1)).clamp_(0, H - 1)  # (B, H)
    xs = (torch.arange(W, device=dev).unsqueeze(0) + shift[1].unsqueeze(1)).clamp_(0, W - 1)  # (B, W)
    b = torch.arange(B, device=dev).view(B, 1, 1)
    return image[b, ys.unsqueeze(2), xs.unsqueeze(1)]


def to_pixels(image: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """(B, H, W, C) uint8 -> (B, C, H, W) float in [0, 1] (NHWC memory when ``channels_last``)."""
    x = image.permute(0, 3, 1, 2).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def observation_to_batch(obs: Mapping, image_keys: tuple[str, ...], state_dim: int, device: torch.device):
    """One observation (unbatched: ``image`` (H,W,3) or {cam: (H,W,3)}, ``state`` (S,), ``task``
    int) or a batch of them -> (pixels uint8 (B,H,W,3n) | None, state (B,S) | None, task (B,))."""
    image = obs.get("image")
    state = obs.get("state")
    unbatched = False
    if image_keys:
        if image is None:
            raise ValueError(f"observation has no 'image' but the policy expects cameras {list(image_keys)}")
        first = next(iter(image.values())) if isinstance(image, Mapping) else image
        unbatched = np.asarray(first).ndim == 3
        if unbatched:
            image = {k: np.asarray(v)[None] for k, v in image.items()} if isinstance(image, Mapping) else np.asarray(image)[None]
        image = torch.from_numpy(np.ascontiguousarray(stack_cameras(image, image_keys, "image"))).to(device)
    if state_dim:
        if state is None:
            raise ValueError(f"observation has no 'state' but the policy expects {state_dim} proprio values")
        state = np.asarray(state, dtype=np.float32)
        if state.ndim == 1:
            unbatched = True
            state = state[None]
        if state.shape[-1] != state_dim:
            raise ValueError(f"observation 'state' has {state.shape[-1]} entries, the policy expects {state_dim}")
        if not np.isfinite(state).all():
            raise ValueError("observation 'state' contains NaN/inf")
        state = torch.from_numpy(state).to(device)
    B = (image if image is not None else state).shape[0]
    task = np.asarray(obs.get("task", 0), dtype=np.int64).reshape(-1)
    if task.size == 1 and B > 1:
        task = np.repeat(task, B)
    return image, state, torch.from_numpy(task).to(device), unbatched
