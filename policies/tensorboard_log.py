"""TensorBoard logging of learner metrics (torch's SummaryWriter; event files, no pickle)."""

from __future__ import annotations

import math
from typing import Mapping


class TensorBoardLogger:
    """``log(step, {name: number})`` writes scalars; non-numbers and non-finite values are skipped."""

    def __init__(self, log_dir: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=log_dir)

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        for name, value in scalars.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
