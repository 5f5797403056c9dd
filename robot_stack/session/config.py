"""The session's typed configuration: what ``robot-stack run`` sets up and launches."""

from __future__ import annotations

from dataclasses import dataclass, field

from robot_stack.config import json_object
from robot_stack.dashboard.config import DashboardConfig
from robot_stack.learner.builder import PolicySpec
from robot_stack.session.actor_loop import ActorConfig
from robot_stack.session.prior_data import PriorDataConfig
from robot_stack.session.scheduler import SchedulerConfig


@dataclass
class RewardSetup:
    """How the session gets its success classifier."""

    classifier: str = ""  # existing classifier (artefact dir, version root or VLM hub id); '' = train one from prior data
    epochs: int = 15  # training epochs when training from prior data
    target_precision: float = 0.99  # per-task threshold chosen for this held-out precision
    cameras: tuple[str, ...] = ()  # cameras the classifier sees side by side when it trains one (() = all the session's cameras; the first one for a given classifier)
    sim_snapshots: int = 2000  # sim: varied scenes labelled by the simulator added to its training frames (the arm anywhere, decoy releases without the object)
    sim_near_misses: float = 0.3  # sim: share of those snapshots staged one step short of the goal (cube beside the bowl, the arm reaching into it empty-handed): the online false successes
    sim_session_layout: float = 0.25  # sim: share of those snapshots in the session's own layout (bowl position, colours, light, camera pose), which all its online frames show
    sim_home_views: float = 0.2  # sim: share of those snapshots ending with the arm put home as the actor does before it confirms a success (the view every "done" is judged from)
    margin_frames: int = 0  # frames before a success onset kept out of the negatives: 0 suits the scripted prior data it trains on (onset exact; "cube held above the bowl" must be a negative)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.margin_frames < 0 or self.sim_snapshots < 0:
            raise ValueError(f"margin_frames and sim_snapshots must be >= 0, got {self.margin_frames}, {self.sim_snapshots}")
        for name in ("sim_near_misses", "sim_session_layout", "sim_home_views"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.5 <= self.target_precision <= 1.0:
            raise ValueError(f"target_precision must be in [0.5, 1], got {self.target_precision}")


@dataclass
class SessionConfig:
    """An autonomous reset-free fine-tuning session (sim by default; real arms through ``arm``)."""

    run_dir: str = "runs/sim-widowx250"  # everything of the session: store, checkpoints, classifier, logs
    scene: str = "widowx250_cube_bowl"  # sim scene ('' for a real robot: then set arm, cameras, tasks, pretrained)
    arm: str = ""  # registered arm for a real robot (franka, widowx_ai, widowx250); '' = the scene's sim arm
    arm_config: str = "{}"  # JSON arm-config overrides for a real arm, e.g. {"host": "172.16.0.2"}
    camera_driver: str = "sim"  # camera driver: sim, realsense, opencv
    camera_config: str = "{}"  # JSON camera-config overrides, e.g. {"serial": "0123"}
    cameras: tuple[str, ...] = ("front", "wrist")  # camera names (one camera node each; the policy sees all, the classifier those of reward.cameras)
    robot_id: str = "sim-widowx250"  # this robot's group in the store
    seed: int = 0  # scene layout, learner and actor exploration-noise seed
    image_size: int = 64  # camera frames and policy input (square side)
    forward_task: str = ""  # real robots: forward task id ('' = the scene's)
    forward_instruction: str = ""  # real robots: its instruction
    backward_task: str = ""  # real robots: backward task id ('' = the scene's)
    backward_instruction: str = ""  # real robots: its instruction
    pretrained: str = ""  # pretrained policy checkpoint dir; '' = pre-train from prior data (sim)
    pretrain_updates: int = 1000  # offline Cal-QL updates before fine-tuning (sim; ~1.5 min on 2 CPU cores)
    # 7.5k: where BC's forward success peaked on the default prior data (bench/session_runs.md, run F)
    bc_init_updates: int = 7500  # Cal-QL: first train BC this many updates and start Cal-QL's encoder + actor from it (0 = off)
    utd_ratio: float = 1.0  # online learner updates per recorded robot step
    learner_overrides: str = ""  # JSON LearnerConfig fields for the online learner only, e.g. {"calql.alpha_lr": 0} (pre-training keeps policy's)
    publish_every: int = 150  # learner updates between new policy versions
    reinit_every: int = 0  # learner updates per round: the online learner starts from fresh weights every this many updates and publishes only finished rounds (self-imitation with policy.kind bc and episode.exploration_noise; README "Self-imitation"); 0 = one learner throughout
    keep_checkpoints: int = 5  # newest policy versions kept on disk (0 = all, e.g. to evaluate the learning curve)
    ensemble_versions: int = 1  # the actor acts with the mean action of the newest this many policy versions (1 = the newest alone); 3 lifted 50-demo BC 0.47 -> 0.67 (README "Ensembles of versions")
    pretrain_seeds: int = 1  # sim: pre-train this many networks (seeds seed, seed+1, ...) as versions 1..N, so an actor with ensemble_versions N starts from their mean (N times the pre-training time)
    max_episodes: int = 0  # stop after this many committed episodes (0 = run until Ctrl-C)
    duration_s: float = 0.0  # stop after this many seconds (0 = run until Ctrl-C)
    respawn: bool = True  # restart a node that dies (the fault is reported either way)
    lockstep: bool = True  # sim: the world advances one control step per action, chosen on the world after the last one, as the scripted demos were recorded (False = free-running wall-clock ticks; real arms never)
    sim_operator_at: int = 0  # sim: a simulated operator (teleop device sim_operator) takes over each training episode not done by this step and finishes it with the scripted expert (prior.expert_noise, prior.expert_gate), flagged as interventions; 0 = none, the autonomous session
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)  # web dashboard (its token also clears e-stops)
    prior: PriorDataConfig = field(default_factory=lambda: PriorDataConfig(demos_per_task=100, failures_per_task=33))  # scripted prior data (sim; fewer demos left the reset-free loop stuck: run G)
    reward: RewardSetup = field(default_factory=RewardSetup)  # success classifier
    policy: PolicySpec = field(default_factory=lambda: PolicySpec(cql_alpha=0.5, bc_weight=30.0, freeze_image_encoder=True))  # policy learner (preset cpu/gpu, Cal-QL/BC); the default is the session bench's measured recipe
    episode: ActorConfig = field(default_factory=ActorConfig)  # episode handling (horizon, timeouts)
    schedule: SchedulerConfig = field(default_factory=SchedulerConfig)  # reset-free scheduling

    @property
    def sim_lockstep(self) -> bool:
        """Lockstep applies to a simulated arm with sim cameras only."""
        return self.lockstep and bool(self.scene) and not self.arm and self.camera_driver == "sim"

    def __post_init__(self) -> None:
        if not self.scene and not self.arm:
            raise ValueError("set scene (simulation) or arm (a real robot)")
        if not self.scene:
            missing = [n for n in ("forward_task", "forward_instruction", "backward_task", "backward_instruction",
                                   "pretrained") if not getattr(self, n)]
            if missing or not self.reward.classifier:
                raise ValueError(f"a real-robot session needs {missing + ([] if self.reward.classifier else ['reward.classifier'])}")
        for name in ("arm_config", "camera_config", "learner_overrides"):
            json_object(name, getattr(self, name))
        if not self.cameras:
            raise ValueError("cameras must name at least one camera")
        unknown = sorted(set(self.reward.cameras) - set(self.cameras))
        if unknown:
            raise ValueError(f"reward.cameras {unknown} are not among the session's cameras {list(self.cameras)}")
        if min(self.max_episodes, self.duration_s, self.pretrain_updates, self.bc_init_updates, self.keep_checkpoints,
               self.reinit_every) < 0:
            raise ValueError("max_episodes, duration_s, pretrain_updates, bc_init_updates, keep_checkpoints and reinit_every must be >= 0")
        if self.ensemble_versions < 1 or self.pretrain_seeds < 1:
            raise ValueError(f"ensemble_versions and pretrain_seeds must be >= 1, got {self.ensemble_versions}, {self.pretrain_seeds}")
        if self.keep_checkpoints and self.keep_checkpoints < self.ensemble_versions:
            raise ValueError(f"keep_checkpoints ({self.keep_checkpoints}) must be 0 (all) or >= ensemble_versions "
                             f"({self.ensemble_versions}): the learner would delete versions the actor acts with")
        if self.pretrain_seeds > 1 and self.pretrained:
            raise ValueError("pretrain_seeds > 1 pre-trains networks from prior data; a given pretrained checkpoint is one network")
        p = self.policy
        if p.kind == "calql" and p.freeze_image_encoder and not (self.bc_init_updates or p.init_from or self.pretrained):
            # a fixed random encoder leaves the critic and actor nothing to locate the cube with
            raise ValueError("policy.freeze_image_encoder keeps a trained image encoder fixed: give bc_init_updates > 0, "
                             "policy.init_from or pretrained, or --no-policy.freeze_image_encoder")
        if self.sim_operator_at < 0:
            raise ValueError(f"sim_operator_at must be >= 0 (0 = no simulated operator), got {self.sim_operator_at}")
        if self.sim_operator_at and not (self.scene and not self.arm):
            raise ValueError("sim_operator_at needs a simulated robot (scene set, no arm): a real robot's operator is a person")
        if self.sim_operator_at >= self.episode.horizon:
            raise ValueError(f"sim_operator_at ({self.sim_operator_at}) must be below the episode horizon ({self.episode.horizon})")
        if not 8 <= self.image_size <= 512:
            raise ValueError(f"image_size must be in [8, 512], got {self.image_size}")
