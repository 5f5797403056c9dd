"""Small-CNN success classifier (HIL-SERL style binary reward, RoboFuME's 4-layer conv encoder).

Trained from scratch on frames of the target scene; one logit head per task on a shared trunk.
Fast on CPU and needs no pretrained weights, which makes it the offline/simulated default.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from reward_vlm.base import SuccessClassifier

WEIGHTS_FILE = "model.safetensors"


@dataclasses.dataclass
class ConvClassifierConfig:
    """Architecture of the small CNN classifier."""

    image_size: int = 64  # frames are resized to image_size x image_size before the network
    channels: int = 32  # channels of every conv layer (RoboFuME: 32)
    layers: int = 4  # conv layers (3x3; the first three stride 2), each BatchNorm+ReLU
    hidden: int = 256  # width of the MLP between the conv trunk and the per-task heads
    dropout: float = 0.1  # dropout before the heads (training only)
    crop: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # (top, left, height, width) of the frame fed to the network, as fractions

    def __post_init__(self) -> None:
        if self.image_size < 16:
            raise ValueError(f"ConvClassifierConfig.image_size must be >= 16, got {self.image_size}")
        for name in ("channels", "layers", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"ConvClassifierConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"ConvClassifierConfig.dropout must be in [0, 1), got {self.dropout}")
        self.crop = tuple(float(v) for v in self.crop)
        top, left, h, w = self.crop if len(self.crop) == 4 else (-1, -1, -1, -1)
        if not (0 <= top < 1 and 0 <= left < 1 and 0 < h <= 1 - top + 1e-9 and 0 < w <= 1 - left + 1e-9):
            raise ValueError(f"ConvClassifierConfig.crop must be (top, left, height, width) fractions inside the frame, got {self.crop}")


class ConvNet(nn.Module):
    """(B, 3, S, S) float, roughly zero-mean unit-range -> (B, n_tasks) logits."""

    def __init__(self, cfg: ConvClassifierConfig, n_tasks: int) -> None:
        super().__init__()
        convs, c_in, side = [], 3, cfg.image_size
        for i in range(cfg.layers):
            stride = 2 if i < 3 else 1
            # BatchNorm: GroupNorm/LayerNorm (RoboFuME's choice) sat on the 0.69 loss plateau for
            # hundreds of steps on small relational data sets ("cube inside bowl"); BN did not.
            convs += [nn.Conv2d(c_in, cfg.channels, 3, stride=stride, padding=1), nn.BatchNorm2d(cfg.channels), nn.ReLU()]
            c_in, side = cfg.channels, (side + 2 - 3) // stride + 1
        self.trunk = nn.Sequential(*convs)
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(cfg.channels * side * side, cfg.hidden), nn.LayerNorm(cfg.hidden),
                                 nn.ReLU(), nn.Dropout(cfg.dropout))
        self.heads = nn.Linear(cfg.hidden, n_tasks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(self.mlp(self.trunk(x)))


class ConvSuccessClassifier(SuccessClassifier):
    """Family "cnn": small CNN trained on labelled frames, a logit per task."""

    family = "cnn"
    inference_batch = 256

    def __init__(self, tasks, cfg: ConvClassifierConfig | None = None, *, seed: int = 0, **kw) -> None:
        super().__init__(tasks, **kw)
        self.cfg = cfg or ConvClassifierConfig()
        torch.manual_seed(seed)
        self.net = ConvNet(self.cfg, len(self.tasks)).to(self.device)
        self.net.eval()

    @property
    def model_name(self) -> str:
        return f"cnn{self.cfg.layers}x{self.cfg.channels}@{self.cfg.image_size}px"

    def _crop(self, images: np.ndarray) -> np.ndarray:
        """The configured region of (B, H, W, 3) frames (a view)."""
        if self.cfg.crop == (0.0, 0.0, 1.0, 1.0):
            return images
        h, w = images.shape[1:3]
        top, left, ch, cw = self.cfg.crop
        y0, x0 = int(round(top * h)), int(round(left * w))
        return images[:, y0:y0 + max(1, int(round(ch * h))), x0:x0 + max(1, int(round(cw * w)))]

    def _preprocess(self, images: np.ndarray, prepared: bool = False) -> torch.Tensor:
        """uint8 frames -> normalised (B, 3, S, S); `prepared` frames are already cropped and resized."""
        if not prepared:
            images = self._crop(images)
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        s = self.cfg.image_size
        if x.shape[-2:] != (s, s):
            # same arithmetic as _training_frames (resize, round to uint8 levels) so training
            # and inference see identical pixels
            x = F.interpolate(x.mul_(255.0), size=(s, s), mode="bilinear", antialias=True, align_corners=False)
            x = x.round_().clamp_(0, 255).div_(255.0)
        return (x - 0.5) / 0.25

    def _training_frames(self, images: np.ndarray) -> np.ndarray:
        """Resize once to the input size (uint8), so augmentation and batches stay small."""
        s = self.cfg.image_size
        images = self._crop(images)
        if images.shape[1:3] == (s, s):
            return np.ascontiguousarray(images)
        out = np.empty((images.shape[0], s, s, 3), np.uint8)
        with torch.no_grad():
            for i in range(0, images.shape[0], 512):
                x = torch.from_numpy(np.ascontiguousarray(images[i:i + 512])).permute(0, 3, 1, 2).float()
                x = F.interpolate(x, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
                out[i:i + 512] = x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        return out

    def _forward_logits(self, images: np.ndarray, task_idx: np.ndarray, prepared: bool = False) -> torch.Tensor:
        out = self.net(self._preprocess(images, prepared))
        return out.gather(1, torch.as_tensor(task_idx, device=out.device)[:, None])[:, 0]

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.net.parameters())

    def _modules(self) -> list[torch.nn.Module]:
        return [self.net]

    def _save_weights(self, directory: pathlib.Path) -> None:
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"family": self.family})

    def _family_config(self) -> dict:
        return {"cnn": dataclasses.asdict(self.cfg)}

    @classmethod
    def _load(cls, directory: pathlib.Path, meta: dict, device: str) -> "ConvSuccessClassifier":
        cfg = ConvClassifierConfig(**{**meta["config"]["cnn"], "crop": tuple(meta["config"]["cnn"].get("crop", (0, 0, 1, 1)))})
        clf = cls(meta["tasks"], cfg, device=device, temperature=meta["temperature"], thresholds=meta["thresholds"],
                  version=meta["version"], parent_version=meta.get("parent_version"), metrics=meta.get("metrics"))
        state = load_file(str(directory / WEIGHTS_FILE), device=str(clf.device))
        clf.net.load_state_dict(state, strict=True)
        return clf
