"""Arm controller node: the only process that moves the arm.

It applies the freshest ``arm/action`` once per control tick through ``Arm.send_action`` (so
every safety rule of ``hardware.safety`` applies), echoes what was actually applied on
``arm/action_sent`` (with the command's sequence number as the layout label ``seq:<n>``), and
publishes joint states, the policy's proprio vector and a diagnostic status. When actions stop
arriving the arm holds: in sim the tick idles the world (the arm keeps its last target), on
real arms the driver's watchdog thread holds it.

In sim (``arm`` starting with ``sim_``) the node owns the MuJoCo scene: each tick advances
simulated time by one control period, and the full world state goes out on
``sim/world_state`` so camera nodes in other processes can render the same world. The
simulator's ground truth goes out on ``sim/ground_truth`` (JSON: each task's success and
``out_of_workspace``): recorded with episodes for benchmarks, and the scheduler's "the scene
left the workspace" signal, where a real robot would need a workspace monitor. ``sim/reset_scene``
(authenticated like the e-stop clear) re-stages the scene, the simulated stand-in for the person an
alert calls: new object placement for a start of a given task, the arm at its reset pose.

Lockstep sim (``lockstep``): each command is applied the moment it arrives and simulated time
advances only with commands, so every action acts on the world state the policy saw, exactly
as in the scripted demos; free-running wall-clock ticks on a loaded machine instead drop,
merge and delay actions, a different environment from the one the prior data came from.
``arm/proprio`` and ``sim/world_state`` carry the sequence number of the last command applied
(layout label ``seq:<n>``), so a consumer can tell whether they already show its effect.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass

import numpy as np

from robot_stack.config import json_object
from robot_stack.runtime import Node, msgs, qos

SEQ_PREFIX = "seq:"


@dataclass
class ControllerNodeConfig:
    """Which arm the controller drives and how."""

    arm: str = "sim_widowx250"  # registered arm name (hardware.arm.ARM_REGISTRY); sim_* arms run a sim scene
    scene: str = "widowx250_cube_bowl"  # sim scene (sim arms only)
    seed: int = 0  # sim scene seed: object placement, lighting
    image_size: int = 64  # sim render size kept by the scene (cameras render in their own process)
    control_hz: float = 10.0  # control ticks per second (wall clock)
    arm_config: str = ""  # JSON object of arm-config overrides, e.g. {"host": "172.16.0.2"}
    action_timeout_s: float = 0.5  # an action older than this is not applied (the arm holds)
    clear_token_sha256: str = ""  # sha256 hex of the token that may clear a latched e-stop ('' = of $ROBOT_STACK_DASHBOARD_TOKEN, else nobody)
    start_pose: str = ""  # named pose to move to on start, e.g. "home" on real arms ('' = stay where it is)
    lockstep: bool = False  # sim only: apply each command on arrival; simulated time advances only with commands

    def __post_init__(self) -> None:
        if self.lockstep and not self.is_sim:
            raise ValueError(f"lockstep needs a sim arm, not {self.arm!r}")
        if not self.arm:
            raise ValueError("arm must name a registered arm")
        if not 0.5 <= self.control_hz <= 1000:
            raise ValueError(f"control_hz must be in [0.5, 1000], got {self.control_hz}")
        if self.action_timeout_s <= 0:
            raise ValueError(f"action_timeout_s must be > 0, got {self.action_timeout_s}")
        json_object("arm_config", self.arm_config)

    @property
    def is_sim(self) -> bool:
        return self.arm.startswith("sim_")

    def arm_overrides(self) -> dict:
        return json_object("arm_config", self.arm_config)


def make_action_msg(action: np.ndarray, seq: int) -> msgs.Float32MultiArray:
    """A 7-D action message whose layout label ``seq:<n>`` carries the command's sequence number.

    Standard messages have no sequence field; the label keeps the message a plain 7-value
    ``Float32MultiArray`` that ``ros2 topic pub`` can also send (without a label: seq 0).
    """
    return msgs.Float32MultiArray.from_numpy(np.asarray(action, dtype=np.float32), labels=[f"{SEQ_PREFIX}{int(seq)}"])


def action_seq(msg: msgs.Float32MultiArray) -> int:
    """The sequence number of an action message (0 when it carries none)."""
    label = msg.layout.dim[0].label if msg.layout.dim else ""
    try:
        return int(label[len(SEQ_PREFIX):]) if label.startswith(SEQ_PREFIX) else 0
    except ValueError:
        return 0


def _env_token_sha256() -> str:
    """sha256 of the operator token a launch file gives the dashboard through the environment."""
    token = os.environ.get("ROBOT_STACK_DASHBOARD_TOKEN", "")
    return hashlib.sha256(token.encode()).hexdigest() if token else ""


class ControllerNode(Node):
    name = "controller"
    Config = ControllerNodeConfig

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        cfg: ControllerNodeConfig = self.cfg
        self.scene = None
        if cfg.is_sim:
            from hardware.sim.scenes import make_scene

            self.scene = make_scene(cfg.scene, seed=cfg.seed, image_size=cfg.image_size,
                                    arm_overrides=cfg.arm_overrides() or None)
            self.arm = self.scene.arm
        else:
            from hardware.arm import make_arm

            self.arm = make_arm(cfg.arm, **cfg.arm_overrides())
            self.arm.connect()
        if cfg.start_pose:
            self.arm.move_to(cfg.start_pose)
        self._action: tuple[np.ndarray, int, float] | None = None
        self._applied_seq = 0  # sequence number of the last command applied
        self._published_since_tick = False  # lockstep: state already went out after a command this period
        self._ticks = 0
        self._held_ticks = 0
        self._last_reason = ""
        self.pub_sent = self.create_publisher(msgs.Float32MultiArray, "arm/action_sent", qos.DEFAULT)
        self.pub_joints = self.create_publisher(msgs.JointState, "joint_states", qos.SENSOR_DATA)
        self.pub_proprio = self.create_publisher(msgs.Float32MultiArray, "arm/proprio", qos.SENSOR_DATA)
        self.pub_status = self.create_publisher(msgs.DiagnosticArray, "arm/status", qos.DEFAULT)
        if self.scene is not None:
            self.pub_world = self.create_publisher(msgs.Float64MultiArray, "sim/world_state", qos.SENSOR_DATA)
            self.pub_truth = self.create_publisher(msgs.String, "sim/ground_truth", qos.DEFAULT)
            self.create_subscription(msgs.String, "sim/reset_scene", self.on_reset_scene, qos.DEFAULT)
        self.create_subscription(msgs.Float32MultiArray, "arm/action", self.on_action, qos.DEFAULT)
        self.create_subscription(msgs.Bool, "arm/estop", self.on_estop, qos.DEFAULT)
        self.create_subscription(msgs.String, "arm/estop_clear", self.on_estop_clear, qos.DEFAULT)
        self.create_subscription(msgs.String, "arm/named_pose", self.on_named_pose, qos.DEFAULT)
        self.create_timer(1.0 / cfg.control_hz, self.tick)
        self.create_timer(0.5, self.publish_status)
        where = f" scene={cfg.scene} seed={cfg.seed}" if cfg.is_sim else ""
        self.get_logger().info(f"controller up: arm={cfg.arm}{where}")

    # -- inputs -----------------------------------------------------------------------------
    def on_action(self, msg: msgs.Float32MultiArray) -> None:
        action = np.asarray(msg.data, dtype=np.float32).reshape(-1)
        # Shape is checked here so a bad publisher is named in the log; NaN/range checks are the
        # arm's own (SafetyGuard), which holds the arm on NaN.
        if action.shape != (7,):
            self.get_logger().error(f"arm/action: expected 7 values, got {action.shape[0]}; ignored")
            return
        if self.cfg.lockstep:
            self._apply(action, action_seq(msg))
            self.publish_state()
            self._published_since_tick = True
        else:
            self._action = (action, action_seq(msg), time.monotonic())

    def on_estop(self, msg: msgs.Bool) -> None:
        if msg.data:
            self.arm.estop("e-stop requested on arm/estop")
            self._action = None
            self.get_logger().warning("E-STOP latched")
            self.publish_status()

    def _authorised(self, topic: str, msg: msgs.String) -> dict | None:
        """The JSON body of ``msg`` if it carries the session token's sha256 (TOPICS.md), else None (logged)."""
        try:
            body = json.loads(msg.data)
            token_hash = str(body["token_hash"])
        except (ValueError, KeyError, TypeError):
            self.get_logger().error(f'{topic}: expected JSON {{"token_hash": ...}}; ignored')
            return None
        want = self.cfg.clear_token_sha256 or _env_token_sha256()
        if not want or not hmac.compare_digest(want.encode(), token_hash.encode()):
            self.get_logger().error(f"{topic}: wrong token; ignored")
            return None
        return body

    def on_estop_clear(self, msg: msgs.String) -> None:
        """Clear a latched e-stop when the message carries the session token's sha256."""
        if self._authorised("arm/estop_clear", msg) is None:
            return
        self.arm.clear_estop()
        self.get_logger().warning("e-stop cleared")
        self.publish_status()

    def on_reset_scene(self, msg: msgs.String) -> None:
        """Sim only: re-stage the scene for a start of ``task`` (default: the pair's first, forward, task);
        with ``keep_layout`` only the task's object moves."""
        body = self._authorised("sim/reset_scene", msg)
        if body is None:
            return
        if self.arm.estopped:
            # the reset puts the arm at its reset pose: nothing may move it while the e-stop holds
            self.get_logger().error("sim/reset_scene: the e-stop is latched; clear it first")
            return
        ids = [t.id for t in self.scene.tasks]
        task = str(body.get("task") or ids[0])
        if task not in ids:
            self.get_logger().error(f"sim/reset_scene: unknown task {task!r} (this scene has {ids}); ignored")
            return
        self._action = None  # a command sent before the reset must not act on the new scene
        keep_layout = body.get("keep_layout") is True  # a JSON true, nothing truthy
        self.scene.randomize(task_id=task, keep_layout=keep_layout)
        kept = " (layout kept)" if keep_layout else ""
        self.get_logger().warning(f"sim/reset_scene: scene re-staged for a start of {task!r}{kept}")
        self.publish_state()

    def on_named_pose(self, msg: msgs.String) -> None:
        try:
            self.arm.move_to(msg.data)
        except (KeyError, ValueError) as exc:
            self.get_logger().error(f"arm/named_pose: {exc}")

    # -- the control tick -------------------------------------------------------------------
    def tick(self) -> None:
        self._ticks += 1
        cmd, self._action = self._action, None  # each command is applied at most once
        if cmd is not None and time.monotonic() - cmd[2] <= self.cfg.action_timeout_s:
            self._apply(cmd[0], cmd[1])
        elif self.cfg.lockstep:
            # The world waits for the next command (the arm holds: nothing moves). Its state is
            # re-sent only in periods without commands, to keep frames coming while it stands
            # still; right after a command it went out already (each copy costs every camera a render).
            published, self._published_since_tick = self._published_since_tick, False
            if published:
                return
        elif self.scene is not None:
            self.scene.step(None)  # simulated time goes on; the arm keeps its last target
        else:
            self.arm.watchdog_check()
        self.publish_state()

    def _apply(self, action: np.ndarray, seq: int) -> None:
        sent = self.arm.send_action(action)  # a sim arm advances one control period here
        self._applied_seq = seq
        self.pub_sent.publish(make_action_msg(sent.action, seq))
        if sent.held or sent.clipped:
            self._last_reason = sent.reason
        self._held_ticks += int(sent.held)

    def publish_state(self) -> None:
        obs = self.arm.get_observation()
        stamp = self.now()
        names = [f"joint{i + 1}" for i in range(len(obs.joint_positions))] + ["gripper"]
        self.pub_joints.publish(msgs.JointState(header=msgs.Header(stamp=stamp, frame_id="base"), name=names,
                                                position=np.append(obs.joint_positions, obs.gripper).astype(np.float64)))
        label = [f"{SEQ_PREFIX}{self._applied_seq}"]
        self.pub_proprio.publish(msgs.Float32MultiArray.from_numpy(obs.state_vector(), labels=label))
        if self.scene is not None:
            self.pub_world.publish(msgs.Float64MultiArray.from_numpy(self.scene.state(), labels=label))
            truth = {t.id: bool(self.scene.success(t.id)) for t in self.scene.tasks}
            truth["out_of_workspace"] = not self.scene.objects_in_workspace()
            self.pub_truth.publish(msgs.String(data=json.dumps(truth)))

    def publish_status(self) -> None:
        values = {
            "estopped": str(self.arm.estopped).lower(),
            "connected": str(self.arm.connected).lower(),
            "ticks": str(self._ticks),
            "held_ticks": str(self._held_ticks),
            "last_reason": self._last_reason,
            "sim": str(self.scene is not None).lower(),  # the dashboard offers a scene reset only in sim
        }
        level = 2 if self.arm.estopped else 0  # DiagnosticStatus ERROR / OK
        status = msgs.DiagnosticStatus(level=level, name="arm", message="e-stop latched" if self.arm.estopped else "ok",
                                       hardware_id=self.cfg.arm,
                                       values=[msgs.KeyValue(key=k, value=v) for k, v in values.items()])
        self.pub_status.publish(msgs.DiagnosticArray(header=msgs.Header(stamp=self.now()), status=[status]))

    def on_shutdown(self) -> None:
        try:
            self.arm.hold()
        finally:
            if self.scene is not None:
                self.scene.close()
            else:
                self.arm.disconnect()
