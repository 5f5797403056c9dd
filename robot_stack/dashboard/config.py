"""Dashboard configuration (``robot-stack monitor --help`` shows these fields)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or 'localhost') only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class DashboardConfig:
    host: str = "127.0.0.1"  # address to bind; 0.0.0.0 opens the dashboard to the lab network (reads then need the token unless public_read)
    port: int = 8765  # TCP port to listen on (0 = any free port)
    token: str = ""  # operator token required by every request that changes anything; "" = a random one printed at start-up
    public_read: bool = False  # let other machines read (page, live view, episodes, stats) without the token
    allowed_hosts: tuple[str, ...] = ()  # Host headers accepted (DNS-rebinding guard); empty = loopback names when bound to loopback, any otherwise
    max_stream_fps: float = 30.0  # most frames per second sent per camera on the live stream
    teleop_deadman_s: float = 0.5  # web teleop stops (zero action, intervention ends) when no input arrives for this long
    stats_window: int = 10  # episodes per point of the success-rate charts
    jpeg_quality: int = 80  # JPEG quality of streamed and played-back frames (1..95)

    def __post_init__(self) -> None:
        if not self.host or any(c.isspace() for c in self.host):
            raise ValueError(f"host: invalid address {self.host!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port!r}")
        if self.token and (len(self.token) < 16 or not self.token.isprintable() or any(c.isspace() for c in self.token)):
            raise ValueError("token must be at least 16 printable characters without spaces (value not shown)")
        if not 0 < self.max_stream_fps <= 120:
            raise ValueError(f"max_stream_fps must be in (0, 120], got {self.max_stream_fps!r}")
        if not 0 < self.teleop_deadman_s <= 5:
            raise ValueError(f"teleop_deadman_s must be in (0, 5], got {self.teleop_deadman_s!r}")
        if not 1 <= self.stats_window <= 10000:
            raise ValueError(f"stats_window must be in 1..10000, got {self.stats_window!r}")
        if not 1 <= self.jpeg_quality <= 95:
            raise ValueError(f"jpeg_quality must be in 1..95, got {self.jpeg_quality!r}")
        self.allowed_hosts = tuple(self.allowed_hosts)

    def effective_allowed_hosts(self) -> list[str]:
        """Host header names the app accepts (TrustedHostMiddleware)."""
        if self.allowed_hosts:
            return list(self.allowed_hosts)
        if is_loopback(self.host):
            return ["127.0.0.1", "localhost", "::1", "[::1]"]
        return ["*"]
