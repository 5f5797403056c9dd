"""Frozen pretrained vision encoder (SigLIP / CLIP via transformers) + a small trained head per task.

The encoder never trains, so it can be any checkpoint from the hub or a local directory; only
the head (a few thousand parameters) is fitted on labelled frames, which takes seconds.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from reward_vlm.base import SuccessClassifier
from reward_vlm.errors import ClassifierLoadError

HEAD_FILE = "head.safetensors"
ENCODER_DIR = "encoder"

#: full-model checkpoints whose vision tower can be loaded on its own
_VISION_CLASSES = {
    "siglip": "SiglipVisionModel", "siglip_vision_model": "SiglipVisionModel",
    "siglip2": "Siglip2VisionModel", "siglip2_vision_model": "Siglip2VisionModel",
    "clip": "CLIPVisionModel", "clip_vision_model": "CLIPVisionModel",
}


@dataclasses.dataclass
class EncoderHeadConfig:
    """Frozen vision encoder + per-task MLP head."""

    encoder: str = "google/siglip-base-patch16-224"  # hub id or local directory of a SigLIP/CLIP checkpoint
    hidden: int = 256  # hidden width of the head MLP (0: a linear head)
    dtype: str = "float32"  # encoder dtype: float32 / bfloat16 / float16

    def __post_init__(self) -> None:
        if not self.encoder:
            raise ValueError("EncoderHeadConfig.encoder must name a hub id or a directory")
        if self.hidden < 0:
            raise ValueError(f"EncoderHeadConfig.hidden must be >= 0, got {self.hidden}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"EncoderHeadConfig.dtype must be float32/bfloat16/float16, got {self.dtype!r}")


def load_vision_encoder(name: str, dtype: torch.dtype) -> nn.Module:
    """The vision tower of a SigLIP/CLIP checkpoint (hub id or directory), in eval mode."""
    import transformers

    cfg = transformers.AutoConfig.from_pretrained(name)
    cls_name = _VISION_CLASSES.get(cfg.model_type)
    if cls_name is None:
        raise ClassifierLoadError(f"{name}: model_type {cfg.model_type!r} is not a supported vision encoder ({sorted(_VISION_CLASSES)})")
    model = getattr(transformers, cls_name).from_pretrained(name, dtype=dtype)
    return model.eval()


def _image_stats(name: str, vision_cfg) -> tuple[list[float], list[float], int]:
    """(mean, std, side) from the checkpoint's preprocessor_config.json, else SigLIP defaults."""
    mean, std = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
    side = vision_cfg.image_size if isinstance(vision_cfg.image_size, int) else vision_cfg.image_size[0]
    path = pathlib.Path(name) / "preprocessor_config.json"
    data = None
    if path.is_file():
        data = json.loads(path.read_text())
    else:
        try:
            from huggingface_hub import hf_hub_download

            data = json.loads(pathlib.Path(hf_hub_download(name, "preprocessor_config.json")).read_text())
        except Exception:  # noqa: BLE001 - no processor file: SigLIP-style defaults
            data = None
    if data:
        mean, std = data.get("image_mean", mean), data.get("image_std", std)
    return list(mean), list(std), int(side)


class EncoderHeadClassifier(SuccessClassifier):
    """Family "vision_encoder": frozen transformers vision tower, trained MLP head per task."""

    family = "vision_encoder"
    inference_batch = 32

    def __init__(self, tasks, cfg: EncoderHeadConfig | None = None, *, seed: int = 0,
                 _encoder_path: str | None = None, **kw) -> None:
        super().__init__(tasks, **kw)
        self.cfg = cfg or EncoderHeadConfig()
        source = _encoder_path or self.cfg.encoder
        dtype = getattr(torch, self.cfg.dtype)
        self.encoder = load_vision_encoder(source, dtype).to(self.device)
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        vcfg = self.encoder.config
        mean, std, self.side = _image_stats(source, vcfg)
        self._mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        self.feature_dim = int(vcfg.hidden_size)
        torch.manual_seed(seed)
        n = len(self.tasks)
        if self.cfg.hidden:
            self.head = nn.Sequential(nn.LayerNorm(self.feature_dim), nn.Linear(self.feature_dim, self.cfg.hidden), nn.ReLU(),
                                      nn.Linear(self.cfg.hidden, n))
        else:
            self.head = nn.Sequential(nn.LayerNorm(self.feature_dim), nn.Linear(self.feature_dim, n))
        self.head.to(self.device).eval()

    @property
    def model_name(self) -> str:
        return f"frozen {self.encoder.config.model_type} ({self.cfg.encoder}) + head"

    @torch.no_grad()
    def features(self, images: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, D) float32 pooled encoder features (never trained)."""
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-2:] != (self.side, self.side):
            x = F.interpolate(x, size=(self.side, self.side), mode="bicubic", antialias=True, align_corners=False).clamp_(0, 1)
        x = ((x - self._mean) / self._std).to(self.encoder.dtype)
        out = self.encoder(pixel_values=x)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:  # towers without a pooling head: mean over patch tokens
            pooled = out.last_hidden_state.mean(dim=1)
        return pooled.float()

    def _forward_logits(self, images: np.ndarray, task_idx: np.ndarray, prepared: bool = False) -> torch.Tensor:
        out = self.head(self.features(images))
        return out.gather(1, torch.as_tensor(task_idx, device=out.device)[:, None])[:, 0]

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.head.parameters())

    def _modules(self) -> list[torch.nn.Module]:
        return [self.head]  # the encoder stays in eval mode (frozen, no dropout)

    def _save_weights(self, directory: pathlib.Path) -> None:
        self.encoder.save_pretrained(directory / ENCODER_DIR)
        (directory / ENCODER_DIR / "preprocessor_config.json").write_text(json.dumps(
            {"image_mean": self._mean.flatten().tolist(), "image_std": self._std.flatten().tolist(),
             "size": {"height": self.side, "width": self.side}}, indent=2))
        state = {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}
        save_file(state, str(directory / HEAD_FILE), metadata={"family": self.family})

    def _family_config(self) -> dict:
        return {"vision_encoder": dataclasses.asdict(self.cfg)}

    @classmethod
    def _load(cls, directory: pathlib.Path, meta: dict, device: str) -> "EncoderHeadClassifier":
        cfg = EncoderHeadConfig(**meta["config"]["vision_encoder"])
        clf = cls(meta["tasks"], cfg, device=device, _encoder_path=str(directory / ENCODER_DIR),
                  temperature=meta["temperature"], thresholds=meta["thresholds"], version=meta["version"],
                  parent_version=meta.get("parent_version"), metrics=meta.get("metrics"))
        clf.head.load_state_dict(load_file(str(directory / HEAD_FILE), device=str(clf.device)), strict=True)
        return clf
