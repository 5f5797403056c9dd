"""QoS profiles, named and valued as rmw's (rmw/qos_profiles.h), backend-independent.

Use ``qos.SENSOR_DATA`` for high-rate data where the latest sample matters (images, joint
states for display) and ``qos.DEFAULT`` for commands and anything that must not be lost.
``qos.LATCHED`` keeps the last sample for late joiners (status, configuration).
"""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class QoSProfile:
    """A QoS profile; ``depth`` applies to KEEP_LAST history."""

    depth: int = 10  # history depth (KEEP_LAST)
    reliability: Literal["reliable", "best_effort"] = "reliable"  # delivery guarantee
    durability: Literal["volatile", "transient_local"] = "volatile"  # late joiners get old samples?
    history: Literal["keep_last", "keep_all"] = "keep_last"  # history kind

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ValueError(f"QoSProfile.depth must be >= 1, got {self.depth}")
        if self.reliability not in ("reliable", "best_effort"):
            raise ValueError(f"QoSProfile.reliability: {self.reliability!r} is not 'reliable' or 'best_effort'")
        if self.durability not in ("volatile", "transient_local"):
            raise ValueError(f"QoSProfile.durability: {self.durability!r} is not 'volatile' or 'transient_local'")
        if self.history not in ("keep_last", "keep_all"):
            raise ValueError(f"QoSProfile.history: {self.history!r} is not 'keep_last' or 'keep_all'")


#: rmw_qos_profile_sensor_data: KEEP_LAST 5, best effort, volatile.
SENSOR_DATA = QoSProfile(depth=5, reliability="best_effort")
#: rmw_qos_profile_default: KEEP_LAST 10, reliable, volatile.
DEFAULT = QoSProfile(depth=10, reliability="reliable")
#: "latched" topics: KEEP_LAST 1, reliable, transient local (late subscribers get the last value).
LATCHED = QoSProfile(depth=1, reliability="reliable", durability="transient_local")
