"""A Dynamixel Protocol 2.0 bus through `dynamixel_sdk`: ping, single writes, GroupSyncRead/Write.

Every transfer checks both the communication result and the servo's error byte and raises
``DynamixelError`` naming the servo, the register and the SDK's own description. The SDK's
packet timeout (a few tens of ms at 1 Mbaud) bounds every call, so nothing here can hang.
"""

from __future__ import annotations

import threading

import dynamixel_sdk as sdk

from hardware.arm import ArmConnectionError


# XM430 / XL430 (Protocol 2.0) control table addresses used by the WidowX 250 driver.
ADDR_OPERATING_MODE = 11  # 1 byte, EEPROM: 3 = position, 5 = current-based position
ADDR_CURRENT_LIMIT = 38  # 2 bytes, EEPROM, units of 2.69 mA
ADDR_TORQUE_ENABLE = 64  # 1 byte
ADDR_GOAL_CURRENT = 102  # 2 bytes
ADDR_PROFILE_VELOCITY = 112  # 4 bytes
ADDR_GOAL_POSITION = 116  # 4 bytes
ADDR_PRESENT_CURRENT = 126  # 2 bytes, signed
ADDR_PRESENT_POSITION = 132  # 4 bytes, signed
MODE_POSITION = 3
MODE_CURRENT_BASED_POSITION = 5


class DynamixelError(ArmConnectionError):
    """A bus transfer failed (no reply, bad CRC, servo error)."""


class _CommError(DynamixelError):
    """No or garbled reply: worth retrying (a busy host can miss the SDK's ~30 ms packet timeout)."""


class DynamixelBus:
    """One serial bus (U2D2 or a pty) with Protocol 2.0 servos; calls are serialised by a lock."""

    def __init__(self, port: str, baudrate: int = 1_000_000, retries: int = 2):
        self.retries = retries  # extra attempts after a lost/garbled reply (not after a servo error)
        self.port_name = port
        self.baudrate = baudrate
        self.port = sdk.PortHandler(port)
        self.ph = sdk.Protocol2PacketHandler()
        self._lock = threading.Lock()
        self._open = False

    def open(self) -> None:
        try:
            ok = self.port.openPort() and self.port.setBaudRate(self.baudrate)
        except Exception as exc:  # pyserial raises SerialException / OSError for a missing device
            raise DynamixelError(f"cannot open Dynamixel bus {self.port_name}: {exc}") from exc
        if not ok:
            raise DynamixelError(f"cannot open Dynamixel bus {self.port_name} at {self.baudrate} baud")
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                self.port.closePort()
            except Exception:  # closing a vanished device must not raise
                pass

    def _check(self, what: str, servo_id: int | str, comm: int, error: int = 0) -> None:
        if comm != sdk.COMM_SUCCESS:
            raise _CommError(f"Dynamixel {what} servo {servo_id} on {self.port_name}: {self.ph.getTxRxResult(comm)}")
        if error:
            raise DynamixelError(f"Dynamixel {what} servo {servo_id} on {self.port_name}: {self.ph.getRxPacketError(error)}")

    def _guard(self, fn, what: str, servo_id):
        if not self._open:
            raise DynamixelError(f"Dynamixel bus {self.port_name} is closed")
        with self._lock:
            try:
                for attempt in range(self.retries + 1):
                    try:
                        return fn()
                    except _CommError:
                        if attempt == self.retries:
                            raise
            except DynamixelError:
                raise
            except Exception as exc:  # the device vanished (OSError / SerialException)
                raise DynamixelError(f"Dynamixel {what} servo {servo_id} on {self.port_name}: {exc!r}") from exc

    def ping(self, servo_id: int) -> int:
        """Model number of ``servo_id``; raises DynamixelError if it does not answer."""

        def _do():
            model, comm, err = self.ph.ping(self.port, servo_id)
            self._check("ping", servo_id, comm, err)
            return model

        return self._guard(_do, "ping", servo_id)

    def write(self, servo_id: int, addr: int, size: int, value: int) -> None:
        """Write one register (1, 2 or 4 bytes) and wait for the servo's status."""
        fn = {1: self.ph.write1ByteTxRx, 2: self.ph.write2ByteTxRx, 4: self.ph.write4ByteTxRx}[size]

        def _do():
            comm, err = fn(self.port, servo_id, addr, int(value) & ((1 << (8 * size)) - 1))
            self._check(f"write@{addr}", servo_id, comm, err)

        self._guard(_do, f"write@{addr}", servo_id)

    def sync_read(self, addr: int, size: int, ids: list[int], signed: bool = True) -> dict[int, int]:
        """One SYNC_READ of ``size`` bytes at ``addr`` from every servo in ``ids``."""

        def _do():
            group = sdk.GroupSyncRead(self.port, self.ph, addr, size)
            for i in ids:
                group.addParam(i)
            comm = group.txRxPacket()
            self._check(f"sync_read@{addr}", ids, comm)
            out = {}
            for i in ids:
                if not group.isAvailable(i, addr, size):
                    raise DynamixelError(f"Dynamixel sync_read@{addr}: no data from servo {i} on {self.port_name}")
                raw = group.getData(i, addr, size)
                if signed and raw >= 1 << (8 * size - 1):
                    raw -= 1 << (8 * size)
                out[i] = raw
            return out

        return self._guard(_do, f"sync_read@{addr}", ids)

    def sync_write(self, addr: int, size: int, values: dict[int, int]) -> None:
        """One SYNC_WRITE of ``size``-byte ``values`` ({id: value}) at ``addr`` (no replies)."""

        def _do():
            group = sdk.GroupSyncWrite(self.port, self.ph, addr, size)
            for i, v in values.items():
                group.addParam(i, list((int(v) & ((1 << (8 * size)) - 1)).to_bytes(size, "little")))
            self._check(f"sync_write@{addr}", list(values), group.txPacket())

        self._guard(_do, f"sync_write@{addr}", list(values))
