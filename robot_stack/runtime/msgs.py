"""Standard ROS 2 message types as plain Python dataclasses, defined once for every backend.

Each class mirrors its ROS 2 ``.msg`` definition field for field (same names, same order, same
wire types), so the CDR bytes we produce are the bytes any ROS 2 install produces and can echo,
record and replay. Nodes use these classes whatever the backend (Cyclone DDS or rclpy).

Field annotations carry the ROS wire type (``uint32``, ``float64``, ``Seq("float64")`` ...); the
:func:`message` decorator turns the class into a dataclass with sensible defaults (0, "", empty
arrays, default-constructed nested messages). Primitive numeric sequences (``uint8[]``,
``float64[]`` ...) are numpy arrays, so images and joint vectors are copied in bulk, never
element by element. Strings and sequences of messages are Python lists.

Example::

    img = msgs.Image.from_numpy(rgb, encoding="rgb8", header=msgs.Header(stamp=node.now()))
    rgb2 = img.to_numpy()                      # (H, W, 3) uint8
    js = msgs.JointState(name=["j1", "j2"], position=[0.1, 0.2])
"""

from __future__ import annotations

import dataclasses
import time as _time
import typing
from typing import Annotated, Any, ClassVar

import numpy as np

# --- wire types --------------------------------------------------------------------------------

#: ROS primitive name -> numpy little-endian dtype (the CDR we speak is little endian).
PRIMITIVE_DTYPES: dict[str, str] = {
    "bool": "?",
    "byte": "u1",
    "char": "u1",
    "int8": "i1",
    "uint8": "u1",
    "int16": "<i2",
    "uint16": "<u2",
    "int32": "<i4",
    "uint32": "<u4",
    "int64": "<i8",
    "uint64": "<u8",
    "float32": "<f4",
    "float64": "<f8",
}


@dataclasses.dataclass(frozen=True)
class Prim:
    """A ROS primitive (``int32``, ``float64``, ``bool``...) or ``string`` (optionally bounded)."""

    name: str
    bound: int = 0  # string<=N; 0 = unbounded


@dataclasses.dataclass(frozen=True)
class Seq:
    """``T[]`` (unbounded sequence) or, with ``length``, the fixed array ``T[length]``.

    ``elem`` is a primitive name (``"float64"``, ``"string"``) or a message class.
    """

    elem: Any
    length: int | None = None


bool_ = Annotated[bool, Prim("bool")]
int8 = Annotated[int, Prim("int8")]
uint8 = Annotated[int, Prim("uint8")]
byte = Annotated[int, Prim("byte")]  # ROS 'byte' = IDL octet (same wire format as uint8)
int16 = Annotated[int, Prim("int16")]
uint16 = Annotated[int, Prim("uint16")]
int32 = Annotated[int, Prim("int32")]
uint32 = Annotated[int, Prim("uint32")]
int64 = Annotated[int, Prim("int64")]
uint64 = Annotated[int, Prim("uint64")]
float32 = Annotated[float, Prim("float32")]
float64 = Annotated[float, Prim("float64")]
string = Annotated[str, Prim("string")]
string256 = Annotated[str, Prim("string", 256)]


def _np_seq(elem: str, length: int | None = None) -> Any:
    return Annotated[np.ndarray, Seq(elem, length)]


# --- the message base class and decorator ------------------------------------------------------


class Message:
    """Base of every message class: value equality (numpy-aware) and ROS type names."""

    #: ROS 2 type name, e.g. ``"sensor_msgs/msg/Image"``.
    _type: ClassVar[str]
    #: ``[(field_name, Prim | Seq | message class)]`` in wire order.
    _spec: ClassVar[list[tuple[str, Any]]]

    @classmethod
    def dds_type_name(cls) -> str:
        """The DDS type name rmw uses: ``sensor_msgs::msg::dds_::Image_``."""
        pkg, sub, name = cls._type.split("/")
        return f"{pkg}::{sub}::dds_::{name}_"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        for name, _ in self._spec:
            a, b = getattr(self, name), getattr(other, name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if not np.array_equal(np.asarray(a), np.asarray(b)):
                    return False
            elif a != b:
                return False
        return True

    __hash__ = None  # type: ignore[assignment]


def _default_factory(kind: Any):
    if isinstance(kind, Prim):
        value = {"bool": False, "string": "", "float32": 0.0, "float64": 0.0}.get(kind.name, 0)
        return lambda: value
    if isinstance(kind, Seq):
        if isinstance(kind.elem, str) and kind.elem != "string":
            dtype = PRIMITIVE_DTYPES[kind.elem]
            n = kind.length or 0
            return lambda: np.zeros(n, dtype=dtype)
        if kind.length:
            raise TypeError("fixed arrays of strings/messages are not supported")
        return list
    return kind  # nested message: default-construct


def message(ros_type: str):
    """Class decorator: make ``cls`` a dataclass message of ROS type ``pkg/msg/Name``."""

    def wrap(cls):
        hints = typing.get_type_hints(cls, include_extras=True)
        spec: list[tuple[str, Any]] = []
        for name in cls.__dict__.get("__annotations__", {}):
            hint = hints[name]
            if typing.get_origin(hint) is typing.ClassVar:
                continue
            if typing.get_origin(hint) is Annotated:
                kind = typing.get_args(hint)[1]
            elif isinstance(hint, type) and issubclass(hint, Message):
                kind = hint
            else:
                raise TypeError(f"{cls.__name__}.{name}: unsupported field annotation {hint!r}")
            spec.append((name, kind))
            if name not in cls.__dict__:
                setattr(cls, name, dataclasses.field(default_factory=_default_factory(kind)))
        cls._type = ros_type
        cls._spec = spec
        new = dataclasses.dataclass(eq=False)(cls)
        return new

    return wrap


# --- builtin_interfaces ------------------------------------------------------------------------


@message("builtin_interfaces/msg/Time")
class Time(Message):
    sec: int32
    nanosec: uint32

    @classmethod
    def from_ns(cls, ns: int) -> "Time":
        sec, nsec = divmod(int(ns), 1_000_000_000)
        return cls(sec=sec, nanosec=nsec)

    @classmethod
    def from_sec(cls, seconds: float) -> "Time":
        return cls.from_ns(round(seconds * 1e9))

    @classmethod
    def now(cls) -> "Time":
        """Wall-clock (ROS system) time, shared by every process on this machine."""
        return cls.from_ns(_time.time_ns())

    def to_ns(self) -> int:
        return self.sec * 1_000_000_000 + self.nanosec

    def to_sec(self) -> float:
        return self.sec + self.nanosec * 1e-9


@message("builtin_interfaces/msg/Duration")
class Duration(Message):
    sec: int32
    nanosec: uint32

    @classmethod
    def from_sec(cls, seconds: float) -> "Duration":
        sec, nsec = divmod(round(seconds * 1e9), 1_000_000_000)
        return cls(sec=sec, nanosec=nsec)

    def to_sec(self) -> float:
        return self.sec + self.nanosec * 1e-9


# --- std_msgs ----------------------------------------------------------------------------------


@message("std_msgs/msg/Header")
class Header(Message):
    stamp: Time
    frame_id: string


@message("std_msgs/msg/String")
class String(Message):
    data: string


@message("std_msgs/msg/Bool")
class Bool(Message):
    data: bool_


@message("std_msgs/msg/Int32")
class Int32(Message):
    data: int32


@message("std_msgs/msg/Float32")
class Float32(Message):
    data: float32


@message("std_msgs/msg/Float64")
class Float64(Message):
    data: float64


@message("std_msgs/msg/Empty")
class Empty(Message):
    # ROS IDL gives empty structs one dummy octet (rosidl's structure_needs_at_least_one_member).
    structure_needs_at_least_one_member: uint8


@message("std_msgs/msg/MultiArrayDimension")
class MultiArrayDimension(Message):
    label: string
    size: uint32
    stride: uint32


@message("std_msgs/msg/MultiArrayLayout")
class MultiArrayLayout(Message):
    dim: Annotated[list, Seq(MultiArrayDimension)]
    data_offset: uint32


class _MultiArrayMixin:
    """numpy helpers shared by the ``*MultiArray`` messages (row-major layout)."""

    _dtype: ClassVar[str]

    @classmethod
    def from_numpy(cls, arr: np.ndarray, labels: list[str] | None = None):
        """Build from an n-d array; ``layout.dim`` gets one entry per axis (row-major strides)."""
        arr = np.ascontiguousarray(arr, dtype=cls._dtype)
        labels = labels or [f"dim{i}" for i in range(arr.ndim)]
        dims, stride = [], int(arr.size)
        for label, size in zip(labels, arr.shape):
            dims.append(MultiArrayDimension(label=label, size=int(size), stride=int(stride)))
            stride = stride // size if size else 0
        return cls(layout=MultiArrayLayout(dim=dims), data=arr.reshape(-1))

    def to_numpy(self) -> np.ndarray:
        """The data reshaped to ``layout.dim`` sizes (flat when the layout is empty)."""
        flat = np.asarray(self.data)[self.layout.data_offset:]
        if not self.layout.dim:
            return flat
        shape = tuple(d.size for d in self.layout.dim)
        return flat[: int(np.prod(shape))].reshape(shape)


@message("std_msgs/msg/Float32MultiArray")
class Float32MultiArray(_MultiArrayMixin, Message):
    _dtype = "<f4"
    layout: MultiArrayLayout
    data: _np_seq("float32")


@message("std_msgs/msg/Float64MultiArray")
class Float64MultiArray(_MultiArrayMixin, Message):
    _dtype = "<f8"
    layout: MultiArrayLayout
    data: _np_seq("float64")


@message("std_msgs/msg/UInt8MultiArray")
class UInt8MultiArray(_MultiArrayMixin, Message):
    _dtype = "u1"
    layout: MultiArrayLayout
    data: _np_seq("uint8")


# --- sensor_msgs -------------------------------------------------------------------------------

#: Image encoding -> (numpy dtype, channels); names as in sensor_msgs/image_encodings.hpp.
IMAGE_ENCODINGS: dict[str, tuple[str, int]] = {
    "rgb8": ("u1", 3), "bgr8": ("u1", 3), "rgba8": ("u1", 4), "bgra8": ("u1", 4),
    "mono8": ("u1", 1), "mono16": ("<u2", 1), "8UC1": ("u1", 1), "8UC3": ("u1", 3),
    "16UC1": ("<u2", 1), "32FC1": ("<f4", 1),
}


@message("sensor_msgs/msg/Image")
class Image(Message):
    header: Header
    height: uint32
    width: uint32
    encoding: string
    is_bigendian: uint8
    step: uint32
    data: _np_seq("uint8")

    @classmethod
    def from_numpy(cls, arr: np.ndarray, encoding: str = "rgb8", header: Header | None = None) -> "Image":
        """Wrap an image array: (H, W, C) or (H, W) matching ``encoding`` (e.g. rgb8 → uint8 (H,W,3))."""
        if encoding not in IMAGE_ENCODINGS:
            raise ValueError(f"Image.from_numpy: unknown encoding {encoding!r}; known: {sorted(IMAGE_ENCODINGS)}")
        dtype, channels = IMAGE_ENCODINGS[encoding]
        arr = np.asarray(arr)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3 or arr.shape[2] != channels or arr.dtype != np.dtype(dtype):
            raise ValueError(
                f"Image.from_numpy: encoding {encoding!r} needs a (H, W, {channels}) {np.dtype(dtype)} array, "
                f"got {arr.shape} {arr.dtype}"
            )
        h, w = arr.shape[:2]
        data = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
        return cls(header=header or Header(), height=h, width=w, encoding=encoding, is_bigendian=0,
                   step=w * channels * np.dtype(dtype).itemsize, data=data)

    def to_numpy(self) -> np.ndarray:
        """The pixels as (H, W, C) (or (H, W) for single-channel encodings), no copy."""
        if self.encoding not in IMAGE_ENCODINGS:
            raise ValueError(f"Image.to_numpy: unsupported encoding {self.encoding!r}")
        dtype, channels = IMAGE_ENCODINGS[self.encoding]
        itemsize = np.dtype(dtype).itemsize
        row = self.width * channels * itemsize
        data = np.asarray(self.data, dtype=np.uint8)
        if self.step < row or data.size < self.step * self.height:
            raise ValueError(
                f"Image.to_numpy: {self.width}x{self.height} {self.encoding} needs step >= {row} and "
                f"{self.step * self.height} bytes, got step {self.step} and {data.size} bytes"
            )
        rows = data[: self.step * self.height].reshape(self.height, self.step)[:, :row]
        out = np.ascontiguousarray(rows).view(dtype).reshape(self.height, self.width, channels)
        return out[:, :, 0] if channels == 1 else out


@message("sensor_msgs/msg/CompressedImage")
class CompressedImage(Message):
    header: Header
    format: string
    data: _np_seq("uint8")


@message("sensor_msgs/msg/JointState")
class JointState(Message):
    header: Header
    name: Annotated[list, Seq("string")]
    position: _np_seq("float64")
    velocity: _np_seq("float64")
    effort: _np_seq("float64")


# --- geometry_msgs -----------------------------------------------------------------------------


@message("geometry_msgs/msg/Vector3")
class Vector3(Message):
    x: float64
    y: float64
    z: float64


@message("geometry_msgs/msg/Point")
class Point(Message):
    x: float64
    y: float64
    z: float64


@message("geometry_msgs/msg/Quaternion")
class Quaternion(Message):
    x: float64
    y: float64
    z: float64
    w: float64 = 1.0  # ROS default: identity rotation


@message("geometry_msgs/msg/Pose")
class Pose(Message):
    position: Point
    orientation: Quaternion


@message("geometry_msgs/msg/PoseStamped")
class PoseStamped(Message):
    header: Header
    pose: Pose


@message("geometry_msgs/msg/Twist")
class Twist(Message):
    linear: Vector3
    angular: Vector3


@message("geometry_msgs/msg/TwistStamped")
class TwistStamped(Message):
    header: Header
    twist: Twist


# --- diagnostic_msgs ---------------------------------------------------------------------------


@message("diagnostic_msgs/msg/KeyValue")
class KeyValue(Message):
    key: string
    value: string


@message("diagnostic_msgs/msg/DiagnosticStatus")
class DiagnosticStatus(Message):
    OK: ClassVar[int] = 0
    WARN: ClassVar[int] = 1
    ERROR: ClassVar[int] = 2
    STALE: ClassVar[int] = 3
    level: byte
    name: string
    message: string
    hardware_id: string
    values: Annotated[list, Seq(KeyValue)]


@message("diagnostic_msgs/msg/DiagnosticArray")
class DiagnosticArray(Message):
    header: Header
    status: Annotated[list, Seq(DiagnosticStatus)]


# --- rmw_dds_common (ROS 2 graph info; used by the Cyclone backend, not by nodes) ---------------


@message("rmw_dds_common/msg/Gid")
class Gid(Message):
    data: _np_seq("uint8", 24)  # Humble: char[24]; the DDS GUID (16 bytes) zero-padded


@message("rmw_dds_common/msg/NodeEntitiesInfo")
class NodeEntitiesInfo(Message):
    node_namespace: string256
    node_name: string256
    reader_gid_seq: Annotated[list, Seq(Gid)]
    writer_gid_seq: Annotated[list, Seq(Gid)]


@message("rmw_dds_common/msg/ParticipantEntitiesInfo")
class ParticipantEntitiesInfo(Message):
    gid: Gid
    node_entities_info_seq: Annotated[list, Seq(NodeEntitiesInfo)]


#: Every message class by ROS type name (``"sensor_msgs/msg/Image"`` → :class:`Image`).
BY_TYPE: dict[str, type[Message]] = {
    cls._type: cls
    for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, Message) and cls is not Message
}
