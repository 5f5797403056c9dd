"""The only module of robot_stack that imports zarr: groups, time-major arrays and JSON attributes.

Layout conventions enforced here (zarr v3 format):
- arrays are chunked in time only; chunk keys use "." separators (``c.12.0.0.0``);
- compression is zstd without shuffle (measured 2.5x smaller than bitshuffle for images),
  with zstd's frame checksum so a damaged chunk fails loudly instead of decoding garbage;
- every chunk is written even when it equals the fill value (``write_empty_chunks``), so a
  missing chunk file always means damage.

Local paths use ``zarr.storage.LocalStore`` (atomic writes: temp file + rename, so a reader
sees either the old or the new chunk, never a torn one); ``s3://``/``gs://``/... URLs use
``zarr.storage.FsspecStore`` (object PUTs are atomic).
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable

import numpy as np
import zarr
from zarr.codecs import ZstdCodec
from zarr.core.sync import sync

from robot_stack.store.errors import EpisodeReadError, IncompatibleStoreError, MissingNodeError, StoreError

# Every chunk is stored, even all-zero ones (a reward chunk of an unrewarded stretch), so a
# missing chunk object always means damage; process-wide because re-opened arrays read it.
zarr.config.set({"array.write_empty_chunks": True})

_CHUNK_KEY = re.compile(r"^c\.(\d+)(?:\.\d+)*$")


def _is_url(url: str) -> bool:
    return "://" in str(url) and not str(url).startswith("file://")


def make_zarr_store(url: str | os.PathLike, storage_options: dict | None = None, read_only: bool = False):
    """A zarr store object for a local directory or an fsspec URL (``s3://bucket/prefix``)."""
    url = os.fspath(url)
    if _is_url(url):
        opts = dict(storage_options or {})
        # Readers poll other processes' writes: fsspec's directory-listing cache would hide new groups.
        opts.setdefault("use_listings_cache", False)
        return zarr.storage.FsspecStore.from_url(url, storage_options=opts, read_only=read_only)
    if url.startswith("file://"):
        url = url[len("file://"):]
    return zarr.storage.LocalStore(url, read_only=read_only)


class ZarrBackend:
    """Thin wrapper over one zarr store: every zarr call of the episode store goes through here.

    Paths are '/'-separated group/array paths relative to the store root ("" is the root).
    Array handles are cached; :meth:`array` re-reads metadata when asked for a longer array
    than the cached shape (another process appended).
    """

    def __init__(self, url: str | os.PathLike, storage_options: dict | None = None, read_only: bool = False):
        self.url = os.fspath(url)
        self.read_only = read_only
        self.zstore = make_zarr_store(self.url, storage_options, read_only=read_only)
        self._arrays: dict[str, Any] = {}
        self._groups: dict[str, Any] = {}

    # ---------------------------------------------------------------- groups and attributes
    def group_exists(self, path: str) -> bool:
        return bool(sync(self.zstore.exists(_meta_key(path))))

    def read_attrs(self, path: str) -> dict:
        """Fresh attributes of the group at ``path`` (one small read). MissingNodeError if absent."""
        try:
            g = zarr.open_group(self.zstore, path=path, mode="r", zarr_format=3, use_consolidated=False)
        except (zarr.errors.NodeNotFoundError, FileNotFoundError, KeyError) as exc:
            if path == "" and self._has_v2_metadata(""):
                raise IncompatibleStoreError(
                    f"{self.url}: is a zarr v2 store; the episode store needs zarr format 3"
                ) from exc
            raise MissingNodeError(f"{self.url}: group '{path or '/'}' not found") from exc
        except zarr.errors.NodeTypeValidationError as exc:
            raise IncompatibleStoreError(f"{self.url}: '{path or '/'}' is an array, expected a group") from exc
        return dict(g.attrs.asdict())

    def _has_v2_metadata(self, path: str) -> bool:
        prefix = f"{path}/" if path else ""
        return bool(sync(self.zstore.exists(prefix + ".zgroup"))) or bool(sync(self.zstore.exists(prefix + ".zattrs")))

    def write_attrs(self, path: str, attrs: dict, cache: bool = False) -> None:
        """Replace all attributes of group ``path`` (one atomic write of its zarr.json), creating it if needed.

        ``cache``: keep the group handle (the writer's own robot group): later writes skip re-reading it.
        """
        g = self._groups.get(path) if cache else None
        if g is None:
            g = zarr.open_group(self.zstore, path=path, mode="a", zarr_format=3, use_consolidated=False)
            if cache:
                self._groups[path] = g
        g.attrs.put(attrs)

    def create_group(self, path: str, attrs: dict | None = None, exist_ok: bool = True) -> None:
        """Create group ``path`` (and missing parents) with ``attrs``; an existing group is left alone if exist_ok."""
        try:
            zarr.open_group(
                self.zstore, path=path, mode="a" if exist_ok else "w-", zarr_format=3,
                attributes=attrs or {}, use_consolidated=False,
            )
        except zarr.errors.ContainsGroupError as exc:
            raise StoreError(f"{self.url}: group '{path}' already exists") from exc

    def list_groups(self, path: str) -> list[str]:
        """Names of the child groups of ``path`` (sorted); [] if the group is absent."""
        prefix = f"{path}/" if path else ""
        names = sync(_collect(self.zstore.list_dir(prefix)))
        out = []
        for name in names:
            name = name.rstrip("/")
            if name and name != "zarr.json" and sync(self.zstore.exists(f"{prefix}{name}/zarr.json")):
                out.append(name)
        return sorted(out)

    def list_child_names(self, path: str) -> list[str]:
        """Names directly under ``path`` without checking their type (one listing call)."""
        prefix = f"{path}/" if path else ""
        return sorted(n.rstrip("/") for n in sync(_collect(self.zstore.list_dir(prefix))) if n.rstrip("/") != "zarr.json")

    def read_many_attrs(self, paths: Iterable[str], *, skip_missing: bool = False) -> dict[str, dict]:
        """Attributes of many small groups at once (concurrent reads of their zarr.json).

        ``skip_missing`` leaves out groups whose metadata is not there (yet): a writer creates the
        directory a moment before it renames the metadata file into it, so a lister can see it early.
        """
        import json

        paths = list(paths)
        proto = zarr.core.buffer.default_buffer_prototype()

        async def _get_all():
            import asyncio

            return await asyncio.gather(*(self.zstore.get(_meta_key(p), prototype=proto) for p in paths))

        out = {}
        for p, buf in zip(paths, sync(_get_all())):
            if buf is None:
                if skip_missing:
                    continue
                raise MissingNodeError(f"{self.url}: group '{p}' not found")
            try:
                out[p] = json.loads(buf.to_bytes()).get("attributes", {})
            except ValueError as exc:
                raise StoreError(f"{self.url}: metadata of '{p}' is not valid JSON: {exc}") from exc
        return out

    # ---------------------------------------------------------------- time-major arrays
    def create_time_array(
        self,
        path: str,
        frame_shape: tuple[int, ...],
        dtype: str,
        chunk_frames: int,
        zstd_level: int,
        overwrite: bool = False,
    ) -> None:
        """Create an empty (0, *frame_shape) array chunked only in time (``overwrite``: replace one left by a crash)."""
        arr = zarr.create_array(
            self.zstore,
            name=path,
            shape=(0, *frame_shape),
            chunks=(int(chunk_frames), *frame_shape),
            dtype=dtype,
            fill_value=0,
            compressors=ZstdCodec(level=int(zstd_level), checksum=True),
            filters=None,
            chunk_key_encoding={"name": "default", "separator": "."},
            config={"write_empty_chunks": True},
            zarr_format=3,
            overwrite=overwrite,
        )
        self._arrays[path] = arr

    def array(self, path: str, min_length: int = 0):
        """Cached handle of array ``path``; re-opened if its cached length is below ``min_length``."""
        arr = self._arrays.get(path)
        if arr is None or arr.shape[0] < min_length:
            try:
                arr = zarr.open_array(self.zstore, path=path, mode="r" if self.read_only else "r+", zarr_format=3)
            except (zarr.errors.NodeNotFoundError, FileNotFoundError, KeyError) as exc:
                self._arrays.pop(path, None)
                raise MissingNodeError(f"{self.url}: array '{path}' is missing") from exc
            self._arrays[path] = arr
        return arr

    def array_info(self, path: str) -> dict:
        arr = self.array(path)
        return {"shape": tuple(arr.shape), "chunks": tuple(arr.chunks), "dtype": str(arr.dtype)}

    def length(self, path: str, fresh: bool = False) -> int:
        """Rows of array ``path`` (``fresh``: re-read its metadata first)."""
        if fresh:
            self.forget(path)
        return int(self.array(path).shape[0])

    def resize(self, path: str, n_frames: int) -> None:
        arr = self.array(path)
        if arr.shape[0] != n_frames:
            arr.resize((int(n_frames), *arr.shape[1:]))

    def write_frames(self, path: str, start: int, values: np.ndarray) -> None:
        """Write ``values`` (T, ...) at rows [start, start+T), growing the array to exactly start+T if shorter."""
        arr = self.array(path)
        end = start + len(values)
        if arr.shape[0] < end:
            arr.resize((end, *arr.shape[1:]))
        arr[start:end] = values

    def write_columns(self, writes: list[tuple[str, int, np.ndarray]]) -> None:
        """Write rows ``values`` at ``start`` of several arrays ``(path, start, values)`` concurrently,
        in one trip through zarr's event loop (arrays grow to exactly start+T if shorter)."""
        import asyncio

        async def one(arr, start: int, values: np.ndarray) -> None:
            end = start + len(values)
            if arr.shape[0] < end:
                await arr.resize((end, *arr.shape[1:]))
            await arr.setitem(slice(start, end), values)

        # Open (or fetch cached) handles BEFORE entering the loop: opening an uncached array is a
        # blocking zarr call, which raises SyncError from inside zarr's running loop (a recovering
        # writer hit this on arrays it had not touched yet).
        handles = [(self.array(p).async_array, start, v) for p, start, v in writes]

        async def all_columns() -> None:
            await asyncio.gather(*(one(arr, start, v) for arr, start, v in handles))

        sync(all_columns())

    def read_frames(self, path: str, start: int, end: int) -> np.ndarray:
        """Rows [start, end) of array ``path``. EpisodeReadError on undecodable chunks."""
        arr = self.array(path, min_length=end)
        if arr.shape[0] < end:
            raise EpisodeReadError(
                f"{self.url}: array '{path}' has {arr.shape[0]} frames but {end} are committed (store damaged)",
                array=path,
            )
        try:
            return np.asarray(arr[start:end])
        except MissingNodeError:
            raise
        except Exception as exc:  # zstd / checksum / codec errors of a damaged chunk
            raise EpisodeReadError(f"{self.url}: array '{path}' rows [{start}, {end}) unreadable: {exc}", array=path) from exc

    def missing_chunks(self, path: str, n_frames: int) -> list[tuple[int, int]]:
        """Frame ranges [a, b) below ``n_frames`` whose chunk object is absent from the store."""
        arr = self.array(path)
        cf = int(arr.chunks[0])
        prefix = f"{path}/"
        present = set()
        for key in sync(_collect(self.zstore.list_prefix(prefix))):
            m = _CHUNK_KEY.match(key[len(prefix):])
            if m:
                present.add(int(m.group(1)))
        n_chunks = -(-int(n_frames) // cf)
        return [(i * cf, min((i + 1) * cf, int(n_frames))) for i in range(n_chunks) if i not in present]

    def forget(self, path: str | None = None) -> None:
        """Drop cached array handles (all, or one)."""
        if path is None:
            self._arrays.clear()
        else:
            self._arrays.pop(path, None)

    # ---------------------------------------------------------------- raw keys (tests / repair tools)
    def delete_node(self, path: str) -> None:
        """Delete everything under ``path`` (used by tests to simulate damage)."""
        sync(self.zstore.delete_dir(path))
        self.forget(path)

    def chunk_key(self, path: str, chunk_index: int) -> str:
        arr = self.array(path)
        return f"{path}/c." + ".".join([str(chunk_index)] + ["0"] * (arr.ndim - 1))

    def overwrite_key(self, key: str, data: bytes) -> None:
        """Write raw bytes at ``key`` (used by tests to simulate a damaged chunk)."""
        proto = zarr.core.buffer.default_buffer_prototype()
        sync(self.zstore.set(key, proto.buffer.from_bytes(data)))


def _meta_key(path: str) -> str:
    return f"{path}/zarr.json" if path else "zarr.json"


async def _collect(aiter) -> list[str]:
    return [x async for x in aiter]
