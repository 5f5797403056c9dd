"""Cyclone DDS backend speaking ROS 2's wire conventions (rmw_cyclonedds), no ROS install needed.

What makes a ROS 2 install (rmw_cyclonedds_cpp) see our topics:
- topic ``/a/b`` is DDS topic ``rt/a/b``; type ``pkg/msg/Name`` is ``pkg::msg::dds_::Name_``;
- samples are XCDR1 little endian (:mod:`cdr`), writers/readers offer only XCDR1;
- QoS from :mod:`qos` maps 1:1 to DDS reliability/durability/history;
- the participant carries USER_DATA ``enclave=/;``;
- each process publishes ``ros_discovery_info`` (rmw_dds_common/ParticipantEntitiesInfo, the
  Humble layout with 24-byte gids) listing its nodes and their readers/writers, which is what
  ``ros2 node list`` / ``ros2 node info`` read. (Iron and later also expect a type hash in
  USER_DATA; not sent, so those distros list topics but may not list our nodes.)

Samples are written and taken as raw CDR bytes through cyclonedds' C layer (``ddspy_write`` /
``ddspy_take``), so the per-element Python IDL packing of ``cyclonedds.idl`` is never used on
the data path; IDL classes generated from :mod:`msgs` only describe the type to DDS (name and
XTypes type information).

Isolation: :func:`isolated_env` gives child-process environment variables pinning DDS to the
loopback interface (unicast discovery to 127.0.0.1, no multicast: ``lo`` has no MULTICAST flag
here) and a random ``ROS_DOMAIN_ID``, so tests and the simulator never reach a lab robot.
"""

from __future__ import annotations

import os
import random
import secrets
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from cyclonedds._clayer import ddspy_take, ddspy_write
from cyclonedds.core import GuardCondition, InstanceState, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.domain import DomainParticipant
from cyclonedds.idl import make_idl_struct, types
from cyclonedds.pub import DataWriter
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from robot_stack.runtime import msgs
from robot_stack.runtime.qos import QoSProfile

if TYPE_CHECKING:
    from robot_stack.runtime.backend import Runtime
    from robot_stack.runtime.node import Node, Subscription, Timer

# --- isolation ---------------------------------------------------------------------------------

#: Loopback-only Cyclone configuration: unicast discovery on 127.0.0.1, participant indices
#: 0..MaxAutoParticipantIndex (one per process; a session runs ~10 node processes).
LOOPBACK_CONFIG = (
    "<CycloneDDS><Domain Id='any'>"
    "<General><Interfaces><NetworkInterface name='lo'/></Interfaces>"
    "<AllowMulticast>false</AllowMulticast></General>"
    "<Discovery><ParticipantIndex>auto</ParticipantIndex>"
    "<MaxAutoParticipantIndex>40</MaxAutoParticipantIndex>"
    "<Peers><Peer address='127.0.0.1'/></Peers></Discovery>"
    # a 640x480 image is ~700 UDP fragments: a bigger socket buffer stops best-effort frame loss
    "<Internal><SocketReceiveBufferSize min='default' max='8MB'/></Internal>"
    "</Domain></CycloneDDS>"
)


def isolated_env(domain_id: int | None = None, tag: str | None = None) -> dict[str, str]:
    """Environment variables for child processes: loopback-only DDS on a (random) domain.

    Merge into a child's environment: ``subprocess.Popen(..., env={**os.environ, **isolated_env()})``.
    The same dict also confines a sourced ROS 2 (rmw_cyclonedds) to this domain and interface.
    ``tag`` (random by default) is Cyclone's domain tag: two graphs that draw the same domain id
    (1 in 201 for two sessions started side by side) still never see each other's topics.
    """
    if domain_id is None:
        domain_id = random.randint(30, 230)  # avoid the low ids labs use; 232 is the port-map limit
    if not 0 <= domain_id <= 232:
        raise ValueError(f"isolated_env: domain_id must be in 0..232, got {domain_id}")
    tag = secrets.token_hex(8) if tag is None else tag
    if not tag.isalnum():
        raise ValueError(f"isolated_env: tag must be alphanumeric, got {tag!r}")
    return {
        "ROS_DOMAIN_ID": str(domain_id),
        "CYCLONEDDS_URI": LOOPBACK_CONFIG.replace("<Discovery>", f"<Discovery><Tag>{tag}</Tag>", 1),
        "ROS_LOCALHOST_ONLY": "1",
        "RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp",
    }


# --- DDS type descriptions generated from msgs -------------------------------------------------

_PRIM_IDL = {
    # rosidl maps ROS 'byte' to IDL octet and ROS 'char' to uint8
    "bool": bool, "byte": types.byte, "char": types.uint8, "int8": types.int8, "uint8": types.uint8,
    "int16": types.int16, "uint16": types.uint16, "int32": types.int32, "uint32": types.uint32,
    "int64": types.int64, "uint64": types.uint64, "float32": types.float32, "float64": types.float64,
}
_IDL_CACHE: dict[type, Any] = {}


def _idl_field(kind: Any) -> Any:
    if isinstance(kind, msgs.Prim):
        if kind.name == "string":
            return types.bounded_str[kind.bound] if kind.bound else str
        return _PRIM_IDL[kind.name]
    if isinstance(kind, msgs.Seq):
        elem = idl_type(kind.elem) if not isinstance(kind.elem, str) else (
            str if kind.elem == "string" else _PRIM_IDL[kind.elem])
        return types.array[elem, kind.length] if kind.length else types.sequence[elem]
    return idl_type(kind)


def idl_type(cls: type[msgs.Message]) -> Any:
    """A cyclonedds IDL struct named and shaped like the ROS type (for DDS discovery only)."""
    t = _IDL_CACHE.get(cls)
    if t is None:
        fields = {name: _idl_field(kind) for name, kind in cls._spec}
        t = make_idl_struct(cls.__name__ + "_", cls.dds_type_name(), fields)
        _IDL_CACHE[cls] = t
    return t


def dds_topic_name(fqn: str) -> str:
    """ROS topic ``/a/b`` → DDS topic ``rt/a/b`` (rmw's ``ros_topic_prefix``)."""
    return "rt" + fqn


def _dds_qos(q: QoSProfile) -> Qos:
    return Qos(
        Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=100))
        if q.reliability == "reliable" else Policy.Reliability.BestEffort,
        Policy.Durability.TransientLocal if q.durability == "transient_local" else Policy.Durability.Volatile,
        Policy.History.KeepLast(depth=q.depth) if q.history == "keep_last" else Policy.History.KeepAll,
        # rmw_cyclonedds speaks XCDR1 only; our bytes are XCDR1
        Policy.DataRepresentation(use_cdrv0_representation=True),
    )


_ANY = SampleState.Any | ViewState.Any | InstanceState.Any
_TAKE_BATCH = 64
_MAX_WAIT_S = 0.1  # wake at least this often so signal handlers run promptly


def _gid(guid) -> msgs.Gid:
    return msgs.Gid(data=np.frombuffer(guid.bytes + bytes(8), dtype=np.uint8).copy())


# --- the backend -------------------------------------------------------------------------------


class _Writer:
    def __init__(self, writer: DataWriter):
        self.writer = writer
        self._ref = writer._ref

    def publish(self, data: bytes | bytearray) -> None:
        pad = (-len(data)) % 4  # cyclone expects the serialized size padded to 4 (as its DataWriter does)
        if pad:
            if isinstance(data, bytearray):
                data += b"\x00" * pad  # in place: no copy of a large payload
            else:
                data = data + b"\x00" * pad
        ret = ddspy_write(self._ref, data)
        if ret < 0:
            raise RuntimeError(f"DDS write failed on {self.writer.topic.get_name()} (code {ret})")

    def matched_count(self) -> int:
        return len(self.writer.get_matched_subscriptions())


class _Reader:
    def __init__(self, reader: DataReader, sub: "Subscription"):
        self.reader, self.sub = reader, sub
        self._ref = reader._ref

    def matched_count(self) -> int:
        return len(self.reader.get_matched_publications())


class CycloneNodeImpl:
    """Per-node part of the Cyclone backend."""

    def __init__(self, backend: "CycloneBackend", node: "Node"):
        self.backend, self.node = backend, node
        self.writers: list[_Writer] = []
        self.readers: list[_Reader] = []

    def parameter_overrides(self) -> dict[str, Any]:
        return dict(self.node.ctx.params)

    def declare_parameters(self, values: dict[str, Any]) -> None:
        self.declared = values  # no parameter services without ROS; kept for introspection

    def create_publisher(self, msg_type, fqn: str, qos: QoSProfile) -> _Writer:
        topic = self.backend.topic(msg_type, fqn)
        w = _Writer(DataWriter(self.backend.dp, topic, qos=_dds_qos(qos)))
        self.writers.append(w)
        return w

    def create_subscription(self, msg_type, fqn: str, qos: QoSProfile, sub: "Subscription") -> _Reader:
        topic = self.backend.topic(msg_type, fqn)
        r = _Reader(DataReader(self.backend.dp, topic, qos=_dds_qos(qos)), sub)
        self.readers.append(r)
        self.backend.add_reader(r)
        return r

    def add_timer(self, timer: "Timer") -> None:
        self.backend.timers.append(timer)
        self.backend.wake()

    def now(self) -> msgs.Time:
        return msgs.Time.now()

    def destroy(self) -> None:
        for r in self.readers:
            self.backend.remove_reader(r)
        self.readers.clear()
        self.writers.clear()


class CycloneBackend:
    """One DDS participant per process (as rmw does per context), one wait set for all readers."""

    name = "cyclonedds"

    def __init__(self, runtime: "Runtime", domain_id: int | None = None):
        self.runtime = runtime
        if os.environ.get("ROS_LOCALHOST_ONLY") == "1" and "CYCLONEDDS_URI" not in os.environ:
            os.environ["CYCLONEDDS_URI"] = LOOPBACK_CONFIG  # read by Cyclone when the domain starts
        if domain_id is None:
            try:
                domain_id = int(os.environ.get("ROS_DOMAIN_ID", "0") or 0)
            except ValueError:
                raise ValueError(f"ROS_DOMAIN_ID must be an integer, got {os.environ['ROS_DOMAIN_ID']!r}") from None
        self.domain_id = domain_id
        self.dp = DomainParticipant(domain_id, qos=Qos(Policy.Userdata(data=b"enclave=/;")))
        self.ws = WaitSet(self.dp)
        self.guard = GuardCondition(self.dp)
        self.ws.attach(self.guard)
        self.readers: list[_Reader] = []
        self.timers: list["Timer"] = []
        self._topics: dict[str, tuple[Topic, type]] = {}
        self._conds: dict[int, ReadCondition] = {}
        self._graph_writer: _Writer | None = None

    # -- entities ---------------------------------------------------------------------------

    def create_node_impl(self, node: "Node") -> CycloneNodeImpl:
        return CycloneNodeImpl(self, node)

    def topic(self, msg_type: type[msgs.Message], fqn: str, dds_name: str | None = None) -> Topic:
        name = dds_name or dds_topic_name(fqn)
        known = self._topics.get(name)
        if known is not None:
            if known[1] is not msg_type:
                from robot_stack.runtime.node import MessageTypeError

                raise MessageTypeError(
                    f"topic '{fqn}': already used with type {known[1]._type} in this process, not {msg_type._type}"
                )
            return known[0]
        t = Topic(self.dp, name, idl_type(msg_type))
        self._topics[name] = (t, msg_type)
        return t

    def add_reader(self, r: _Reader) -> None:
        cond = ReadCondition(r.reader, SampleState.NotRead | ViewState.Any | InstanceState.Any)
        self._conds[id(r)] = cond
        self.ws.attach(cond)
        self.readers.append(r)
        self.wake()

    def remove_reader(self, r: _Reader) -> None:
        cond = self._conds.pop(id(r), None)
        if cond is not None:
            self.ws.detach(cond)
        if r in self.readers:
            self.readers.remove(r)

    # -- executor ---------------------------------------------------------------------------

    def wake(self) -> None:
        """Interrupt a wait in :meth:`spin_once` (thread-safe)."""
        self.guard.set(True)

    def spin_once(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for data or a due timer, then run the ready callbacks."""
        now = time.monotonic()
        live = [t for t in self.timers if not t.cancelled]
        if len(live) != len(self.timers):
            self.timers = live
        wait = min(timeout_s, _MAX_WAIT_S)
        if live:
            wait = min(wait, min(t.next_due for t in live) - now)
        if wait > 0:
            self.ws.wait(int(wait * 1e9))
        self.guard.set(False)
        for r in list(self.readers):
            while True:
                got = ddspy_take(r._ref, _ANY, _TAKE_BATCH)
                if isinstance(got, int):
                    raise RuntimeError(f"DDS take failed on topic '{r.sub.topic}' (code {got})")
                for data, info in got:
                    if info.valid_data:
                        r.sub.on_bytes(data)
                if len(got) < _TAKE_BATCH:
                    break
        now = time.monotonic()
        for t in live:
            if not t.cancelled and t.next_due <= now:
                t.next_due += t.period_s
                if t.next_due <= now:  # fell behind: skip missed periods, as rclpy does
                    t.next_due = now + t.period_s
                t.callback()

    # -- ROS 2 graph (ros_discovery_info) ---------------------------------------------------

    def publish_graph(self, nodes: list["Node"]) -> None:
        """Tell ROS 2 tools which nodes live in this participant and which readers/writers they own."""
        if self._graph_writer is None:
            topic = self.topic(msgs.ParticipantEntitiesInfo, "ros_discovery_info", dds_name="ros_discovery_info")
            self._graph_writer = _Writer(DataWriter(self.dp, topic, qos=_dds_qos(
                QoSProfile(depth=1, reliability="reliable", durability="transient_local"))))
        info = msgs.ParticipantEntitiesInfo(gid=_gid(self.dp.guid), node_entities_info_seq=[
            msgs.NodeEntitiesInfo(
                node_namespace=n.namespace, node_name=n.node_name,
                reader_gid_seq=[_gid(r.reader.guid) for r in n._impl.readers],
                writer_gid_seq=[_gid(w.writer.guid) for w in n._impl.writers],
            )
            for n in nodes
        ])
        from robot_stack.runtime import cdr

        self._graph_writer.publish(cdr.serialize(info))

    def read_graph(self, timeout_s: float = 2.0, min_nodes: int = 1) -> list[msgs.ParticipantEntitiesInfo]:
        """Read ``ros_discovery_info`` from every participant on the domain (what ``ros2 node list`` sees).

        Returns the latest info per participant once at least ``min_nodes`` nodes are listed or
        ``timeout_s`` passed.
        """
        from robot_stack.runtime import cdr

        topic = self.topic(msgs.ParticipantEntitiesInfo, "ros_discovery_info", dds_name="ros_discovery_info")
        reader = DataReader(self.dp, topic, qos=_dds_qos(
            QoSProfile(depth=1, reliability="reliable", durability="transient_local")))
        latest: dict[bytes, msgs.ParticipantEntitiesInfo] = {}
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                got = ddspy_take(reader._ref, _ANY, _TAKE_BATCH)
                for data, info in got if not isinstance(got, int) else []:
                    if info.valid_data:
                        msg = cdr.deserialize(msgs.ParticipantEntitiesInfo, data)
                        latest[msg.gid.data.tobytes()] = msg
                count = sum(len(p.node_entities_info_seq) for p in latest.values())
                if count >= min_nodes or time.monotonic() > deadline:
                    return list(latest.values())
                time.sleep(0.05)
        finally:
            reader.__del__()  # delete the DDS reader now, not at GC

    def close(self) -> None:
        self.readers.clear()
        self.timers.clear()
        # deleting the participant deletes all its entities
        self.dp.__del__()
