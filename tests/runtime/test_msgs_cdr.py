"""Our message definitions and CDR bytes against rosbags, an independent ROS 2 serializer."""

from __future__ import annotations

import importlib.util
import pathlib
import zlib

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from robot_stack.runtime import cdr, msgs
from robot_stack.runtime.dds import dds_topic_name

_spec = importlib.util.spec_from_file_location("rt_samples", pathlib.Path(__file__).with_name("samples.py"))
samples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(samples)

TS = get_typestore(Stores.ROS2_HUMBLE)
REQUIRED = [
    "builtin_interfaces/msg/Time", "builtin_interfaces/msg/Duration", "std_msgs/msg/Header",
    "std_msgs/msg/String", "std_msgs/msg/Bool", "std_msgs/msg/Int32", "std_msgs/msg/Float32",
    "std_msgs/msg/Float64", "std_msgs/msg/Float32MultiArray", "std_msgs/msg/Float64MultiArray",
    "std_msgs/msg/MultiArrayLayout", "std_msgs/msg/MultiArrayDimension", "std_msgs/msg/UInt8MultiArray",
    "std_msgs/msg/Empty", "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage",
    "sensor_msgs/msg/JointState", "geometry_msgs/msg/Vector3", "geometry_msgs/msg/Point",
    "geometry_msgs/msg/Quaternion", "geometry_msgs/msg/Pose", "geometry_msgs/msg/PoseStamped",
    "geometry_msgs/msg/Twist", "geometry_msgs/msg/TwistStamped", "diagnostic_msgs/msg/KeyValue",
    "diagnostic_msgs/msg/DiagnosticStatus", "diagnostic_msgs/msg/DiagnosticArray",
]


def to_rosbags(msg):
    """Convert our message to a rosbags message object, field by field (independent of our CDR code)."""
    cls = TS.types[msg._type]
    values = {}
    for name, kind in msg._spec:
        v = getattr(msg, name)
        if isinstance(kind, msgs.Seq) and not isinstance(kind.elem, str):
            v = [to_rosbags(x) for x in v]
        elif isinstance(kind, msgs.Seq) and kind.elem != "string":
            v = np.asarray(v, dtype=msgs.PRIMITIVE_DTYPES[kind.elem])
        elif isinstance(v, msgs.Message):
            v = to_rosbags(v)
        values[name] = v
    return cls(**values)


def test_every_required_type_is_defined():
    assert set(REQUIRED) <= set(msgs.BY_TYPE), sorted(set(REQUIRED) - set(msgs.BY_TYPE))


@pytest.mark.parametrize("ros_type", sorted(msgs.BY_TYPE))
def test_fields_match_ros_definition(ros_type):
    cls = msgs.BY_TYPE[ros_type]
    _, fields = TS.fielddefs[ros_type]
    assert [name for name, _ in cls._spec] == [name for name, _ in fields]


@pytest.mark.parametrize("ros_type", sorted(msgs.BY_TYPE))
def test_bytes_equal_rosbags(ros_type):
    rng = np.random.default_rng(zlib.crc32(ros_type.encode()))
    cls = msgs.BY_TYPE[ros_type]
    for _ in range(5):
        msg = samples.sample(cls, rng)
        ours = cdr.serialize(msg)
        theirs = bytes(TS.serialize_cdr(to_rosbags(msg), ros_type))
        assert ours == theirs, f"{ros_type}: {ours.hex()} != {theirs.hex()}"
        back = cdr.deserialize(cls, theirs)
        assert back == msg
        assert cdr.serialize(back) == ours


def test_big_image_bytes_and_numpy_round_trip():
    rng = np.random.default_rng(0)
    img = samples.big_image(rng)
    ours = cdr.serialize(img)
    assert ours == bytes(TS.serialize_cdr(to_rosbags(img), "sensor_msgs/msg/Image"))
    back = cdr.deserialize(msgs.Image, ours)
    assert back.to_numpy().shape == (480, 640, 3)
    np.testing.assert_array_equal(back.to_numpy(), img.to_numpy())
    assert back.to_numpy().flags.writeable


def test_ros2_name_mangling():
    assert msgs.Image.dds_type_name() == "sensor_msgs::msg::dds_::Image_"
    assert msgs.Time.dds_type_name() == "builtin_interfaces::msg::dds_::Time_"
    assert msgs.ParticipantEntitiesInfo.dds_type_name() == "rmw_dds_common::msg::dds_::ParticipantEntitiesInfo_"
    assert dds_topic_name("/camera/front/image") == "rt/camera/front/image"


def test_truncated_and_garbled_bytes_raise_cdr_error():
    data = cdr.serialize(msgs.JointState(name=["a", "b"], position=[1.0, 2.0]))
    for cut in (0, 3, 10, len(data) - 9):
        with pytest.raises(cdr.CdrError):
            cdr.deserialize(msgs.JointState, data[:cut])
    with pytest.raises(cdr.CdrError, match="encapsulation"):
        cdr.deserialize(msgs.JointState, b"\x00\x07\x00\x00" + data[4:])  # XCDR2 header
    with pytest.raises(cdr.CdrError, match="string length"):
        cdr.deserialize(msgs.String, b"\x00\x01\x00\x00\xff\xff\x00\x00abc\x00")


def test_bad_field_values_name_the_field():
    with pytest.raises(cdr.CdrError, match="String.data"):
        cdr.serialize(msgs.String(data=5))
    with pytest.raises(cdr.CdrError, match="Int32.data"):
        cdr.serialize(msgs.Int32(data=2**40))
    with pytest.raises(cdr.CdrError, match="JointState.position"):
        cdr.serialize(msgs.JointState(position=["a"]))
    with pytest.raises(cdr.CdrError, match="PoseStamped.pose"):
        cdr.serialize(msgs.PoseStamped(pose=msgs.Point()))


def test_numpy_helpers():
    mono = np.arange(12, dtype=np.uint16).reshape(3, 4)
    img = msgs.Image.from_numpy(mono, "mono16")
    assert (img.height, img.width, img.step) == (3, 4, 8)
    np.testing.assert_array_equal(cdr.deserialize(msgs.Image, cdr.serialize(img)).to_numpy(), mono)
    with pytest.raises(ValueError, match="rgb8"):
        msgs.Image.from_numpy(np.zeros((4, 4), np.float32), "rgb8")
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    ma = msgs.Float32MultiArray.from_numpy(arr)
    assert [d.stride for d in ma.layout.dim] == [24, 12, 4]
    np.testing.assert_array_equal(cdr.deserialize(msgs.Float32MultiArray, cdr.serialize(ma)).to_numpy(), arr)
    t = msgs.Time.from_sec(1.25)
    assert (t.sec, t.nanosec) == (1, 250_000_000) and t.to_sec() == 1.25


@pytest.mark.parametrize("ros_type", sorted(msgs.BY_TYPE))
def test_generated_fast_path_matches_reference_codec(ros_type):
    """serialize()/deserialize() fall back to the reference codec on any error, which would hide a
    broken fast path: call the generated functions directly."""
    cls = msgs.BY_TYPE[ros_type]
    codec = cdr.codec(cls)
    enc, dec = cdr._gen_encoder(cls, True), cdr._gen_decoder(cls, True)
    rng = np.random.default_rng(zlib.crc32(ros_type.encode()) + 1)
    for _ in range(5):
        msg = samples.sample(cls, rng)
        ref = bytearray(cdr.HEADER)
        codec.encode_into(msg, ref)
        fast = bytearray(cdr.HEADER)
        enc(msg, fast)
        assert fast == ref
        assert dec(bytes(ref), 4)[0] == msg
