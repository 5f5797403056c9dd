"""The simulated operator: a teleop device that mirrors the world and finishes unfinished episodes."""

import time

import numpy as np
import pytest

from hardware.sim.operator import SimOperator, SimOperatorConfig
from hardware.sim.scenes import make_scene
from hardware.teleop import make_teleop

FORWARD, BACKWARD = "put_cube_in_bowl", "take_cube_out_of_bowl"
HOLD = np.array([0, 0, 0, 0, 0, 0, 1.0], dtype=np.float32)  # what the stand-in "policy" sends: stay, hand open


@pytest.fixture
def world():
    scene = make_scene("widowx250_cube_bowl", seed=5, image_size=16)
    scene.randomize(np.random.default_rng(1), task_id=FORWARD)
    yield scene
    scene.close()


def test_takes_over_at_its_step_finishes_the_task_and_lets_go(world):
    operator = make_teleop("sim_operator", take_over_at=4, noise=0.0, gate="loose", seed=2)
    assert isinstance(operator, SimOperator)
    with operator:
        intervening = []
        for step in range(60):
            operator.set_state(world.state())
            operator.set_episode(0, FORWARD, step, running=True)
            cmd = operator.read()
            assert operator.read().action.tolist() == cmd.action.tolist(), "one expert action per world state"
            intervening.append(cmd.intervening)
            world.step(cmd.action if cmd.intervening else HOLD)
            if world.success(FORWARD):
                break
        assert world.success(FORWARD), "the operator's expert finishes the task it took over"
        assert intervening[:4] == [False] * 4 and all(intervening[4:]), intervening
        assert operator.takeovers == 1

        operator.release()  # the episode ended
        operator.set_state(world.state())
        operator.set_episode(0, FORWARD, step + 1, running=True)  # a late status of that episode
        assert not operator.read().intervening and operator.takeovers == 1

        # the cube is in the bowl now: the reverse task is taken over, except an evaluation episode
        operator.set_episode(1, BACKWARD, 10, running=True, eval=True)
        assert not operator.read().intervening
        operator.set_episode(2, BACKWARD, 3, running=True)
        assert not operator.read().intervening, "not before its step"
        operator.set_episode(2, BACKWARD, 4, running=False)
        assert not operator.read().intervening, "not while the actor homes the arm or checks success"
        operator.set_episode(2, BACKWARD, 4, running=True)
        assert operator.read().intervening and operator.takeovers == 2
        # a task already done is left alone
        operator.set_episode(3, FORWARD, 20, running=True)
        assert not operator.read().intervening and operator.takeovers == 2


def test_a_taken_over_episode_stays_taken_over_without_new_input(world):
    operator = SimOperator(SimOperatorConfig(take_over_at=1, stale_timeout_s=0.1), scene=world)
    with operator:
        operator.set_state(world.state())
        operator.set_episode(0, FORWARD, 1, running=True)
        later = operator.read(now=time.monotonic() + 10.0)
        assert later.intervening, "a person finishing an episode keeps control while the world pauses"
    assert world.world is not None, "a scene it was given is not closed with it"


@pytest.mark.parametrize("field, value", [("take_over_at", 0), ("noise", 1.5), ("gate", "sloppy"), ("scene", "no_such_scene")])
def test_config_is_validated(field, value):
    with pytest.raises(ValueError, match=field):
        SimOperatorConfig(**{field: value})
