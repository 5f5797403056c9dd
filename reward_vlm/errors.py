"""Errors raised at the public edge of `reward_vlm`: each message names the thing that is wrong."""

from __future__ import annotations


class RewardInputError(ValueError):
    """Images, labels or task ids passed to a classifier have the wrong shape, dtype or size."""


class UnknownTaskError(RewardInputError, KeyError):
    """A task id the classifier was not built for."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class ClassifierLoadError(RuntimeError):
    """A classifier artefact (or base model) is missing, corrupt or of an unsupported format."""
