"""A Dynamixel Protocol 2.0 servo chain emulated on a pseudo-terminal, for driver tests.

``DynamixelEmulator(ids=[1, 2, ...]).start()`` opens a pty pair; ``.port`` is the slave device
path (``/dev/pts/N``) that pyserial / ``dynamixel_sdk.PortHandler`` open like a U2D2. A thread
answers packets written to it, as the servos on a real bus would:

- instructions PING (0x01, also broadcast), READ (0x02), WRITE (0x03), SYNC_READ (0x82),
  SYNC_WRITE (0x83); anything else gets an "instruction error" status;
- CRC-16 (poly 0x8005, as in the ROBOTIS e-Manual) checked on every packet, byte stuffing
  (FF FF FD -> FF FF FD FD) both ways; a bad CRC is answered with a CRC error status;
- an XM430-style control table (little-endian): model number 0, ID 7, operating mode 11, current
  limit 38, torque enable 64, LED 65, goal current 102, profile velocity 112, goal position 116,
  moving 122, present current 126, present velocity 128, present position 132, temperature 146;
  EEPROM fields (< 64) refuse writes while torque is on (access error), like the real servo;
- motion: with torque on, the present position approaches the goal as a first-order system
  (time constant ``tau_s``); an ``obstacle`` (ticks) stops a servo short of its goal, and in
  current-based position mode (operating mode 5) its present current then sits at the goal
  current clipped to the current limit (a gripper squeezing an object).

Fault injection for tests: ``corrupt_next_reply`` flips a CRC byte, ``silent`` ids never answer.
"""

from __future__ import annotations

import math
import os
import select
import threading
import time
import tty
from dataclasses import dataclass, field

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE

INST_PING, INST_READ, INST_WRITE, INST_STATUS = 0x01, 0x02, 0x03, 0x55
INST_SYNC_READ, INST_SYNC_WRITE = 0x82, 0x83
ERR_INSTRUCTION, ERR_CRC, ERR_DATA_RANGE, ERR_DATA_LENGTH, ERR_ACCESS = 0x02, 0x03, 0x04, 0x05, 0x07

# address: (size, default); the subset of the XM430-W350 table the drivers use.
CONTROL_TABLE: dict[int, tuple[int, int]] = {
    0: (2, 1020),  # model number (XM430-W350)
    6: (1, 48),  # firmware version
    7: (1, 1),  # ID
    8: (1, 1),  # baud rate index (1 = 57600)
    11: (1, 3),  # operating mode (3 = position, 5 = current-based position)
    38: (2, 1193),  # current limit (units of 2.69 mA)
    48: (4, 4095),  # max position limit
    52: (4, 0),  # min position limit
    64: (1, 0),  # torque enable
    65: (1, 0),  # LED
    70: (1, 0),  # hardware error status
    102: (2, 1193),  # goal current
    108: (4, 0),  # profile acceleration
    112: (4, 0),  # profile velocity
    116: (4, 2048),  # goal position
    122: (1, 0),  # moving
    126: (2, 0),  # present current (signed)
    128: (4, 0),  # present velocity (signed)
    132: (4, 2048),  # present position (signed)
    146: (1, 35),  # present temperature
}
TORQUE_ENABLE, GOAL_POSITION, PRESENT_POSITION = 64, 116, 132
SIGNED = {126, 128, 132}


def crc16(data: bytes, crc: int = 0) -> int:
    """Dynamixel Protocol 2.0 CRC-16 (poly 0x8005, init 0, not reflected) of ``data``."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def stuff(payload: bytes) -> bytes:
    """Insert 0xFD after every FF FF FD inside instruction/params (never in the header)."""
    out = bytearray()
    for b in payload:
        out.append(b)
        if len(out) >= 3 and out[-3:] == b"\xff\xff\xfd":
            out.append(0xFD)
    return bytes(out)


def unstuff(payload: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(payload):
        out.append(payload[i])
        if len(out) >= 3 and out[-3:] == b"\xff\xff\xfd" and i + 1 < len(payload) and payload[i + 1] == 0xFD:
            i += 1  # drop the stuffing byte
        i += 1
    return bytes(out)


def build_packet(servo_id: int, instruction: int, params: bytes = b"") -> bytes:
    """A complete Protocol 2.0 packet (header, id, length, instruction, stuffed params, CRC)."""
    body = stuff(bytes([instruction]) + params)
    length = len(body) + 2
    pkt = HEADER + bytes([servo_id, length & 0xFF, length >> 8]) + body
    c = crc16(pkt)
    return pkt + bytes([c & 0xFF, c >> 8])


@dataclass
class ServoState:
    """One emulated servo: its control table bytes plus the continuous motion state."""

    servo_id: int
    table: bytearray = field(default_factory=lambda: bytearray(147))
    position: float = 2048.0  # ticks, continuous
    obstacle: float | None = None  # ticks the servo cannot pass (moving toward lower ticks)
    last_update: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        for addr, (size, default) in CONTROL_TABLE.items():
            self.write_int(addr, size, default)
        self.write_int(7, 1, self.servo_id)
        self.write_int(132, 4, int(self.position))

    def read_int(self, addr: int, size: int) -> int:
        v = int.from_bytes(self.table[addr : addr + size], "little", signed=addr in SIGNED)
        return v

    def write_int(self, addr: int, size: int, value: int) -> None:
        self.table[addr : addr + size] = int(value).to_bytes(size, "little", signed=value < 0)


class DynamixelEmulator:
    """Servos ``ids`` on one emulated bus behind a pty; ``start()`` / ``stop()`` or a context manager."""

    def __init__(self, ids, tau_s: float = 0.05, initial_positions: dict[int, int] | None = None):
        self.tau_s = tau_s
        self.servos: dict[int, ServoState] = {}
        for i in ids:
            s = ServoState(i)
            if initial_positions and i in initial_positions:
                s.position = float(initial_positions[i])
                s.write_int(132, 4, initial_positions[i])
                s.write_int(116, 4, initial_positions[i])
            self.servos[i] = s
        self.lock = threading.Lock()
        self.silent: set[int] = set()
        self.corrupt_next_reply = False
        self.packets_seen: dict[int, int] = {}  # instruction -> count (tests check SYNC_* is used)
        self.crc_errors = 0
        self._master: int | None = None
        self._slave: int | None = None
        self.port = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "DynamixelEmulator":
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._serve, daemon=True, name="dynamixel-emulator")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None

    def __enter__(self) -> "DynamixelEmulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- physics --------------------------------------------------------------------------------
    def _advance(self, s: ServoState, now: float) -> None:
        dt = max(0.0, now - s.last_update)
        s.last_update = now
        old = s.position
        moving = False
        current = 0
        if s.read_int(TORQUE_ENABLE, 1):
            goal = float(s.read_int(GOAL_POSITION, 4))
            new = goal + (s.position - goal) * math.exp(-dt / self.tau_s) if self.tau_s > 0 else goal
            blocked = False
            if s.obstacle is not None and new < s.obstacle <= s.position + 0.5:
                new, blocked = max(new, s.obstacle), goal < s.obstacle
            s.position = new
            moving = abs(goal - new) > 2 and not blocked
            if blocked and s.read_int(11, 1) == 5:
                limit = s.read_int(38, 2)
                current = -min(abs(s.read_int(102, 2)), limit)
        vel = (s.position - old) / dt if dt > 0 else 0.0
        s.write_int(PRESENT_POSITION, 4, int(round(s.position)))
        s.write_int(128, 4, int(vel * 60.0 / 4096.0 / 0.229))  # ticks/s -> units of 0.229 rpm
        s.write_int(126, 2, current)
        s.write_int(122, 1, int(moving))

    def set_obstacle(self, servo_id: int, ticks: float | None) -> None:
        with self.lock:
            self.servos[servo_id].obstacle = ticks

    def present_position(self, servo_id: int) -> int:
        with self.lock:
            s = self.servos[servo_id]
            self._advance(s, time.monotonic())
            return s.read_int(PRESENT_POSITION, 4)

    def register(self, servo_id: int, addr: int) -> int:
        with self.lock:
            return self.servos[servo_id].read_int(addr, CONTROL_TABLE[addr][0])

    # ---- wire -----------------------------------------------------------------------------------
    def _serve(self) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.05)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                chunk = os.read(self._master, 4096)
            except OSError:
                return
            buf.extend(chunk)
            while True:
                pkt = self._take_packet(buf)
                if pkt is None:
                    break
                for reply in self._handle(pkt):
                    self._send(reply)

    def _take_packet(self, buf: bytearray) -> bytes | None:
        start = buf.find(HEADER)
        if start < 0:
            del buf[: max(0, len(buf) - 3)]
            return None
        del buf[:start]
        if len(buf) < 7:
            return None
        length = buf[5] | (buf[6] << 8)
        total = 7 + length
        if len(buf) < total:
            return None
        pkt = bytes(buf[:total])
        del buf[:total]
        return pkt

    def _send(self, data: bytes) -> None:
        if self.corrupt_next_reply:
            self.corrupt_next_reply = False
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        try:
            os.write(self._master, data)
        except OSError:
            pass

    def _status(self, servo_id: int, error: int = 0, params: bytes = b"") -> bytes:
        return build_packet(servo_id, INST_STATUS, bytes([error]) + params)

    def _handle(self, pkt: bytes) -> list[bytes]:
        servo_id, inst = pkt[4], pkt[7]
        self.packets_seen[inst] = self.packets_seen.get(inst, 0) + 1
        crc = pkt[-2] | (pkt[-1] << 8)
        if crc16(pkt[:-2]) != crc:
            self.crc_errors += 1
            if servo_id in self.servos and servo_id not in self.silent:
                return [self._status(servo_id, ERR_CRC)]
            return []
        params = unstuff(pkt[8:-2])
        now = time.monotonic()
        with self.lock:
            for s in self.servos.values():
                self._advance(s, now)
            if inst == INST_PING:
                ids = sorted(self.servos) if servo_id == BROADCAST_ID else [servo_id]
                return [
                    self._status(i, 0, self.servos[i].table[0:2] + self.servos[i].table[6:7])
                    for i in ids
                    if i in self.servos and i not in self.silent
                ]
            if inst == INST_SYNC_WRITE:
                addr, size = params[0] | params[1] << 8, params[2] | params[3] << 8
                data = params[4:]
                for k in range(0, len(data) - size + 1, size + 1):
                    sid = data[k]
                    if sid in self.servos and self._writable(self.servos[sid], addr):
                        self.servos[sid].table[addr : addr + size] = data[k + 1 : k + 1 + size]
                return []
            if inst == INST_SYNC_READ:
                addr, size = params[0] | params[1] << 8, params[2] | params[3] << 8
                replies = []
                for sid in params[4:]:
                    s = self.servos.get(sid)
                    if s is None or sid in self.silent:
                        break  # the chain stops: later servos wait for this one's reply
                    replies.append(self._status(sid, 0, bytes(s.table[addr : addr + size])))
                return replies
            s = self.servos.get(servo_id)
            if s is None or servo_id in self.silent:
                return []
            if inst == INST_READ:
                addr, size = params[0] | params[1] << 8, params[2] | params[3] << 8
                if addr + size > len(s.table):
                    return [self._status(servo_id, ERR_DATA_RANGE)]
                return [self._status(servo_id, 0, bytes(s.table[addr : addr + size]))]
            if inst == INST_WRITE:
                addr, data = params[0] | params[1] << 8, params[2:]
                if addr + len(data) > len(s.table):
                    return [self._status(servo_id, ERR_DATA_RANGE)]
                if not self._writable(s, addr):
                    return [self._status(servo_id, ERR_ACCESS)]
                s.table[addr : addr + len(data)] = data
                return [self._status(servo_id, 0)]
            return [self._status(servo_id, ERR_INSTRUCTION)]

    @staticmethod
    def _writable(s: ServoState, addr: int) -> bool:
        # EEPROM area (below torque enable) is locked while torque is on.
        return not (addr < TORQUE_ENABLE and s.read_int(TORQUE_ENABLE, 1))
