"""Interbotix WidowX 250 6-DoF on Dynamixel servos via `dynamixel_sdk`; registers "widowx250"."""

from hardware.widowx250.arm import WidowX250Arm, WidowX250Config

__all__ = ["WidowX250Arm", "WidowX250Config"]
