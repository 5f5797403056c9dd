"""Trossen WidowX AI through `trossen_arm`; registers the "widowx_ai" arm. Imports trossen_arm."""

from hardware.widowx_ai.arm import WidowXAIArm, WidowXAIConfig

__all__ = ["WidowXAIArm", "WidowXAIConfig"]
