"""Control sinks and the web-teleop deadman."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from robot_stack.dashboard import ControlUnavailable, NullControlSink, RecordingControlSink, WebTeleop, token_hash


def test_token_hash_is_sha256_hex():
    assert token_hash("abc") == hashlib.sha256(b"abc").hexdigest()


def test_null_sink_refuses_everything():
    s = NullControlSink()
    for call in (lambda: s.session_command("start"), s.estop, lambda: s.clear_estop("h"),
                 lambda: s.teleop(np.zeros(7)), lambda: s.set_intervening(True)):
        with pytest.raises(ControlUnavailable):
            call()


def test_web_teleop_starts_and_ends_an_intervention():
    sink = RecordingControlSink()
    t = WebTeleop(sink, deadman_s=0.5)
    t.act(np.array([0.3, 0, 0, 0, 0, 0, -1], np.float32))
    t.act(np.array([0.3, 0, 0, 0, 0, 0, -1], np.float32))
    assert sink.kinds() == ["intervening", "teleop", "teleop"] and t.active
    assert not t.check_deadman(now=t._last + 0.4)  # still fresh
    assert t.check_deadman(now=t._last + 0.6)
    assert sink.kinds()[-2:] == ["teleop", "intervening"] and not sink.intervening and not t.active
    assert sink.calls[-2][2].tolist() == [0, 0, 0, 0, 0, 0, -1]
    assert not t.release() and not t.check_deadman(now=1e12)  # nothing active: nothing sent
    assert len(sink.calls) == 5


def test_web_teleop_without_robot_stays_inactive():
    t = WebTeleop(NullControlSink())
    with pytest.raises(ControlUnavailable):
        t.act(np.zeros(7, np.float32))
    assert not t.active and not t.release()


def test_deadman_must_be_positive():
    with pytest.raises(ValueError, match="deadman_s"):
        WebTeleop(RecordingControlSink(), deadman_s=0)
