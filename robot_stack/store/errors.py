"""Errors raised by the episode store; each message names the store, episode and array involved."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every episode-store error."""


class IncompatibleStoreError(StoreError):
    """The store (or one robot group) was written by an incompatible format version, or is not an episode store."""


class MissingNodeError(StoreError, KeyError):
    """A group or array the format requires is absent (e.g. a deleted ``data/<key>`` array)."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


class EpisodeNotFoundError(StoreError, KeyError):
    """No committed episode has this id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class EpisodeReadError(StoreError):
    """An episode's data cannot be read back intact (corrupt or missing chunk, checksum mismatch)."""

    def __init__(self, message: str, episode_id: str | None = None, array: str | None = None):
        super().__init__(message)
        self.episode_id = episode_id
        self.array = array


class WriterConflictError(StoreError):
    """Another live writer holds this robot's group (one writer per robot group)."""
