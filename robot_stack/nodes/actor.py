"""Actor node: runs the policy at the control rate and records reset-free episodes to the store.

A thin shell over :class:`robot_stack.session.actor_loop.ActorLoop`: it keeps the freshest
camera frames, proprio, classifier output and teleop input from their topics, calls the loop
once per control tick, publishes the action, and streams steps to the episode store. New
policy versions are picked up from the checkpoint directory only at episode boundaries. The
scheduler's state is saved after every episode so ``--resume`` continues where it stopped.
"""

from __future__ import annotations

import json
import pathlib
import time
from dataclasses import dataclass, field

import numpy as np

from robot_stack.config import json_object
from robot_stack.nodes.controller import action_seq, make_action_msg
from robot_stack.runtime import Node, msgs, qos
from robot_stack.session.actor_loop import (ActorConfig, ActorLoop, ClassifierOutput, LockstepGate, Observation,
                                            TeleopInput)
from robot_stack.session.scheduler import ResetFreeScheduler, SchedulerConfig, TaskSpec
from robot_stack.session.stages import write_json_atomic


@dataclass
class ActorNodeConfig:
    """The actor: which tasks, where episodes and checkpoints live, how episodes run."""

    store: str = "episodes.zarr"  # episode store location (directory or object-store URL)
    robot_id: str = "robot0"  # this robot's group in the store (one writer per robot)
    robot_description: str = "{}"  # JSON object stored with the robot group (arm model, scene, ...)
    checkpoints: str = "checkpoints"  # policy checkpoint directory written by the learner
    forward_task: str = "put_cube_in_bowl"  # task id of the forward task
    forward_instruction: str = "put the cube in the bowl"  # its language instruction
    backward_task: str = "take_cube_out_of_bowl"  # task id of the reverse task
    backward_instruction: str = "take the cube out of the bowl"  # its language instruction
    task_ids: tuple[str, ...] = ()  # task ids in the policy's task-index order; empty = (forward, backward)
    cameras: tuple[str, ...] = ("front",)  # cameras to record (topics camera/<name>/image)
    state_file: str = ""  # scheduler state JSON for resume ('' = not saved)
    autostart: bool = True  # start running episodes as soon as observations arrive
    device: str = "cpu"  # torch device for the policy
    ensemble_versions: int = 1  # act with the mean action of the newest this many policy versions (1 = the newest alone); the learner must keep at least as many (README "Ensembles of versions")
    seed: int = 0  # exploration-noise seed, mixed with the episode count so a restarted actor draws fresh noise
    lockstep: bool = False  # sim only: act only on frames and proprio that show the last action's effect (controller and cameras in lockstep too)
    episode: ActorConfig = field(default_factory=ActorConfig)  # episode handling
    schedule: SchedulerConfig = field(default_factory=SchedulerConfig)  # reset-free scheduling

    def __post_init__(self) -> None:
        if not self.cameras:
            raise ValueError("cameras must name at least one camera")
        json_object("robot_description", self.robot_description)
        if self.forward_task == self.backward_task:
            raise ValueError("forward_task and backward_task must differ")
        if self.ensemble_versions < 1:
            raise ValueError(f"ensemble_versions must be >= 1 (1 = the newest version alone), got {self.ensemble_versions}")

    def policy_task_ids(self) -> list[str]:
        ids = list(self.task_ids) or [self.forward_task, self.backward_task]
        for t in (self.forward_task, self.backward_task):
            if t not in ids:
                raise ValueError(f"task_ids {ids} lack {t!r}")
        return ids


class ActorNode(Node):
    name = "actor"
    Config = ActorNodeConfig

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        from robot_stack.session.adapters import CheckpointWatcher, StoreEpisodeSink
        from robot_stack.store import EpisodeStore

        cfg: ActorNodeConfig = self.cfg
        forward = TaskSpec(cfg.forward_task, cfg.forward_instruction, "forward")
        backward = TaskSpec(cfg.backward_task, cfg.backward_instruction, "backward")
        self.state_path = pathlib.Path(cfg.state_file) if cfg.state_file else None
        if self.state_path is not None and self.state_path.exists():
            scheduler = ResetFreeScheduler.from_dict(forward, backward, json.loads(self.state_path.read_text()), cfg.schedule)
            self.get_logger().info(f"resumed schedule at episode {scheduler.state.episodes} ({scheduler.state.phase})")
        else:
            scheduler = ResetFreeScheduler(forward, backward, cfg.schedule)
        rng = np.random.default_rng([cfg.seed, scheduler.state.episodes])  # exploration (and an ensemble's sampling member)
        self.watcher = CheckpointWatcher(cfg.checkpoints, cfg.policy_task_ids(), device=cfg.device,
                                         ensemble=cfg.ensemble_versions, rng=rng)
        policy = self.watcher.load_latest()
        if policy is None:
            raise RuntimeError(f"actor: no loadable policy checkpoint in {cfg.checkpoints!r}; "
                               "pre-train one first (robot-stack pretrain) or point 'checkpoints' at one")
        self.store = EpisodeStore.create(cfg.store)  # opens an existing store, creates an empty one otherwise
        self.sink = StoreEpisodeSink(self.store, cfg.robot_id, json.loads(cfg.robot_description))
        self.loop = ActorLoop(cfg.episode, scheduler, policy, self.sink, policy_source=self.watcher.load_latest, rng=rng)

        # camera -> (frame, wall time it was captured (lockstep: arrived), its header stamp)
        self._images: dict[str, tuple[np.ndarray, float, float]] = {}
        self._proprio: tuple[np.ndarray, float] | None = None
        self._applied_seq = 0  # the controller's last applied command, as the proprio reports it
        self.gate = LockstepGate(cfg.episode.observation_timeout_s) if cfg.lockstep else None
        # One slot per task: the reward node publishes every task of the pair for each frame, so a
        # single "newest" slot would mostly hold the other task's output.
        self._rewards: dict[str, ClassifierOutput] = {}
        self._teleop_action: tuple[np.ndarray, float] | None = None  # the device's newest action, when it arrived
        self._intervening = False  # the teleop node's newest "intervening" flag
        self._teleop: TeleopInput | None = None
        self._truth: dict = {}
        self.pub_action = self.create_publisher(msgs.Float32MultiArray, "arm/action", qos.DEFAULT)
        self.pub_pose = self.create_publisher(msgs.String, "arm/named_pose", qos.DEFAULT)
        self.pub_state = self.create_publisher(msgs.String, "session/state", qos.DEFAULT)
        self.pub_events = self.create_publisher(msgs.String, "session/events", qos.DEFAULT)
        self._bad_frames: set[str] = set()
        for cam in cfg.cameras:
            self.create_subscription(msgs.Image, f"camera/{cam}/image", lambda m, cam=cam: self.on_image(cam, m),
                                     qos.SENSOR_DATA)
        self.create_subscription(msgs.Float32MultiArray, "arm/proprio", self.on_proprio, qos.SENSOR_DATA)
        self.create_subscription(msgs.Float32MultiArray, "arm/action_sent", self.on_action_sent, qos.DEFAULT)
        self.create_subscription(msgs.Float32MultiArray, "reward/success", self.on_reward, qos.SENSOR_DATA)
        self.create_subscription(msgs.Float32MultiArray, "teleop/action", self.on_teleop_action, qos.DEFAULT)
        self.create_subscription(msgs.Bool, "teleop/intervening", self.on_intervening, qos.DEFAULT)
        self.create_subscription(msgs.String, "session/command", self.on_command, qos.DEFAULT)
        self.create_subscription(msgs.String, "sim/ground_truth", self.on_truth, qos.DEFAULT)
        self.create_timer(1.0 / cfg.episode.control_hz, self.tick)
        self.create_timer(0.5, self.publish_state)
        if cfg.autostart:
            self.loop.start()
        self.get_logger().info(f"actor up: robot={cfg.robot_id} policy v{policy.version} store={cfg.store}")

    # -- inputs -----------------------------------------------------------------------------
    def on_image(self, camera: str, msg: msgs.Image) -> None:
        image = msg.to_numpy()
        expected = getattr(self.loop.policy, "image_shape", None)
        if expected is not None and image.shape != expected:
            # A misconfigured camera (or another graph's on this DDS domain) must not crash the
            # actor: the frame is dropped, so no fresh observation and the arm is held.
            if camera not in self._bad_frames:
                self._bad_frames.add(camera)
                self.get_logger().error(f"camera/{camera}/image: frame {image.shape} is not the policy's "
                                        f"{expected}; dropping such frames")
            return
        stamp = msg.header.stamp.to_sec()
        # Lockstep frames are stamped with simulated time; freshness is then their arrival.
        self._images[camera] = (image, time.time() if self.cfg.lockstep else stamp, stamp)

    def on_proprio(self, msg: msgs.Float32MultiArray) -> None:
        self._proprio = (np.asarray(msg.data, dtype=np.float32), time.time())
        self._applied_seq = action_seq(msg)

    def on_action_sent(self, msg: msgs.Float32MultiArray) -> None:
        self.loop.on_action_sent(action_seq(msg), np.asarray(msg.data, dtype=np.float32))

    def on_reward(self, msg: msgs.Float32MultiArray) -> None:
        if not msg.layout.dim or len(msg.data) < 3:
            return
        prob, _threshold, decision = (float(x) for x in msg.data[:3])
        task = msg.layout.dim[0].label
        self._rewards[task] = ClassifierOutput(task, prob, decision >= 0.5, time.time())

    def on_teleop_action(self, msg: msgs.Float32MultiArray) -> None:
        self._teleop_action = (np.asarray(msg.data, dtype=np.float32), time.time())
        if self._intervening:
            self._teleop = TeleopInput(self._teleop_action[0], True, self._teleop_action[1])

    def on_intervening(self, msg: msgs.Bool) -> None:
        now = time.time()
        self._intervening = bool(msg.data)
        if not self._intervening:
            self._teleop = TeleopInput(np.zeros(7, np.float32), False, now)
            return
        # The device's action comes on its own topic, with no order between the two: until one as
        # recent as this flag has arrived, the person's first step would be a stale (or zero) action.
        if self._teleop_action is not None and now - self._teleop_action[1] <= self.cfg.episode.teleop_timeout_s:
            self._teleop = TeleopInput(self._teleop_action[0], True, now)

    def on_truth(self, msg: msgs.String) -> None:
        try:
            self._truth = json.loads(msg.data)
        except ValueError:
            self.get_logger().error("sim/ground_truth: not JSON; ignored")

    def on_command(self, msg: msgs.String) -> None:
        try:
            cmd = json.loads(msg.data)["cmd"]
        except (ValueError, KeyError, TypeError):
            self.get_logger().error(f"session/command: expected JSON {{\"cmd\": ...}}, got {msg.data!r}")
            return
        if cmd in ("start", "resume"):
            self.loop.start()
        elif cmd == "pause":
            events = self.loop.pause()
            self._emit(events)
            if events:  # a success check cut short committed its episode
                self._save_state()
        elif cmd == "stop":
            self._emit(self.loop.stop())
            self._save_state()
        else:
            self.get_logger().error(f"session/command: unknown command {cmd!r}")
            return
        self.get_logger().info(f"session command: {cmd}")
        self.publish_state()

    # -- the control tick -------------------------------------------------------------------
    def observation(self) -> Observation | None:
        if self._proprio is None or any(c not in self._images for c in self.cfg.cameras):
            return None
        stamps = [self._images[c][1] for c in self.cfg.cameras] + [self._proprio[1]]
        return Observation({c: self._images[c][0] for c in self.cfg.cameras}, self._proprio[0], min(stamps))

    def tick(self) -> None:
        now = time.time()
        frame_stamps = {c: v[2] for c, v in self._images.items()}
        waiting = self.gate is not None and not self.gate.ready(self._applied_seq, frame_stamps, now)
        result = self.loop.tick(None if waiting else self.observation(), self._rewards, self._teleop, now, self._truth)
        if result.named_pose:
            self.pub_pose.publish(msgs.String(data=result.named_pose))
        if result.action is not None:
            self.pub_action.publish(make_action_msg(result.action, result.seq))
            if self.gate is not None:
                self.gate.sent(result.seq, {c: frame_stamps[c] for c in self.cfg.cameras}, now)
        if result.events:
            self._emit(result.events)
            if any(e["event"] in ("episode_committed", "alert") for e in result.events):
                self._save_state()

    def _emit(self, events: list[dict]) -> None:
        for e in events:
            self.pub_events.publish(msgs.String(data=json.dumps({**e, "time": time.time()})))
            level = self.get_logger().warning if e["event"] in ("alert", "bad_action") else self.get_logger().info
            level(json.dumps(e))

    def _save_state(self) -> None:
        if self.state_path is not None:
            write_json_atomic(self.state_path, self.loop.scheduler.to_dict())

    def publish_state(self) -> None:
        status = self.loop.status()
        status["intervening"] = bool(self._teleop is not None and self._teleop.intervening)
        if self.gate is not None:
            status["lockstep_timeouts"] = self.gate.timeouts  # steps taken without seeing the last action's effect
        self.pub_state.publish(msgs.String(data=json.dumps(status)))

    def on_shutdown(self) -> None:
        # A deliberate stop commits the episode in progress as truncated: nothing recorded is lost.
        try:
            self._emit(self.loop.stop())
            self._save_state()
        finally:
            self.sink.close()

