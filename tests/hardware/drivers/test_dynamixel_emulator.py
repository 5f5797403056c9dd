"""The Dynamixel Protocol 2.0 emulator itself, checked against dynamixel_sdk's own packet code."""

from __future__ import annotations

import os
import select
import time

import numpy as np
import pytest

sdk = pytest.importorskip("dynamixel_sdk")

pytestmark = pytest.mark.timeout(30, method="thread")


def test_crc_matches_sdk(dxl_emulator_module):
    ph = sdk.Protocol2PacketHandler()
    rng = np.random.default_rng(0)
    for n in (1, 7, 40, 200):
        data = bytes(rng.integers(0, 256, n, dtype=np.uint8))
        assert dxl_emulator_module.crc16(data) == ph.updateCRC(0, list(data), len(data))


def test_stuffing_roundtrip_through_sdk(dxl_emulator_module):
    """A goal position whose bytes contain FF FF FD must survive SDK stuffing + emulator unstuffing."""
    emu = dxl_emulator_module.DynamixelEmulator([1]).start()
    try:
        port = sdk.PortHandler(emu.port)
        ph = sdk.Protocol2PacketHandler()
        assert port.openPort() and port.setBaudRate(1_000_000)
        tricky = 0x00FDFFFF  # little-endian bytes FF FF FD 00
        comm, err = ph.write4ByteTxRx(port, 1, 108, tricky)  # profile acceleration: any 4-byte field
        assert comm == sdk.COMM_SUCCESS and err == 0
        assert emu.register(1, 108) == tricky
        value, comm, err = ph.read4ByteTxRx(port, 1, 108)  # the reply is stuffed by the emulator
        assert comm == sdk.COMM_SUCCESS and value == tricky
        port.closePort()
    finally:
        emu.stop()


def _exchange(emu_module, emu, packet: bytes) -> bytes:
    fd = os.open(emu.port, os.O_RDWR | os.O_NOCTTY)
    try:
        import tty

        tty.setraw(fd)
        os.write(fd, packet)
        out = b""
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                out += os.read(fd, 256)
                if len(out) >= 11:
                    break
        return out
    finally:
        os.close(fd)


def test_bad_crc_and_unknown_instruction_get_error_status(dxl_emulator_module):
    m = dxl_emulator_module
    emu = m.DynamixelEmulator([3]).start()
    try:
        ping = m.build_packet(3, m.INST_PING)
        bad = ping[:-1] + bytes([ping[-1] ^ 0x55])
        reply = _exchange(m, emu, bad)
        assert reply[4] == 3 and reply[7] == m.INST_STATUS and reply[8] == m.ERR_CRC
        assert emu.crc_errors == 1
        reply = _exchange(m, emu, m.build_packet(3, 0x10))
        assert reply[8] == m.ERR_INSTRUCTION
    finally:
        emu.stop()


def test_first_order_motion_and_torque_gate(dxl_emulator_module):
    m = dxl_emulator_module
    emu = m.DynamixelEmulator([1], tau_s=0.05).start()
    try:
        s = emu.servos[1]
        with emu.lock:
            s.write_int(116, 4, 3048)  # goal without torque: must not move
        time.sleep(0.1)
        assert emu.present_position(1) == 2048
        with emu.lock:
            s.write_int(64, 1, 1)
            emu._advance(s, time.monotonic())
        time.sleep(0.05)  # one time constant: ~63 % of the way
        p = emu.present_position(1)
        assert 2048 + 400 < p < 2048 + 900
        time.sleep(0.4)
        assert abs(emu.present_position(1) - 3048) <= 2
    finally:
        emu.stop()
