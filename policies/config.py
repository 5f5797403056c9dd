"""Typed configs of the networks and learners, with named presets ("cpu", "gpu", "state").

Every field has a one-line comment: ``robot_stack.config`` turns them into ``--help`` text and
ROS parameter names (nested dataclasses flatten with dots, e.g. ``network.encoder.channels``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


@dataclass
class EncoderConfig:
    """The image encoder: RoboFuME-style conv stack, or a local pretrained backbone."""

    kind: Literal["conv", "pretrained"] = "conv"  # "conv": 4 conv layers + LayerNorm/ReLU; "pretrained": local transformers vision model
    image_size: int = 128  # square image side in pixels that the encoder expects (batches must match)
    channels: int = 32  # output channels of every conv layer
    strides: tuple[int, ...] = (2, 1, 1, 1)  # stride of each 3x3 conv layer (its length = number of layers)
    feature_dim: int = 50  # size of the image feature after the projection (Linear + LayerNorm + tanh)
    pooling: Literal["flatten", "spatial_softmax"] = "flatten"  # conv map -> vector: flatten (RoboFuME/DrQ) or per-channel expected x/y (keypoints; learns object positions in far fewer updates)
    pretrained_path: str = ""  # local folder of a transformers vision model (config + safetensors); never downloaded
    freeze_backbone: bool = True  # kind=pretrained: keep backbone weights fixed, train only the projection

    def __post_init__(self) -> None:
        if self.kind not in ("conv", "pretrained"):
            raise ValueError(f"encoder.kind must be 'conv' or 'pretrained', got {self.kind!r}")
        if self.pooling not in ("flatten", "spatial_softmax"):
            raise ValueError(f"encoder.pooling must be 'flatten' or 'spatial_softmax', got {self.pooling!r}")
        if self.image_size < 16:
            raise ValueError(f"encoder.image_size must be >= 16, got {self.image_size!r}")
        _positive("encoder.channels", self.channels)
        _positive("encoder.feature_dim", self.feature_dim)
        self.strides = tuple(int(s) for s in self.strides)
        if not self.strides or any(s not in (1, 2) for s in self.strides):
            raise ValueError(f"encoder.strides must be a non-empty list of 1s and 2s, got {self.strides!r}")
        if self.kind == "pretrained" and not self.pretrained_path:
            raise ValueError("encoder.pretrained_path must name a local model folder when encoder.kind='pretrained'")


@dataclass
class NetworkConfig:
    """Observation inputs, task conditioning, actor and critic sizes."""

    image_keys: tuple[str, ...] = ("front",)  # camera names fed to the encoder (stacked on channels); empty = state-only
    state_dim: int = 15  # proprio size (joints + ee pose + gripper); 0 = no proprio
    action_dim: int = 7  # action size ([dx,dy,dz,droll,dpitch,dyaw,gripper] for arms)
    action_chunk: int = 1  # consecutive actions one policy output holds; the critic scores the whole chunk (Q-chunking, Li et al. 2025); 1 = a fresh action every control step
    chunk_steps_run: int = 0  # actions of each chunk run (open loop) before the policy plans again: 0 = the whole chunk; 1 = only the first (receding horizon, closed loop)
    num_tasks: int = 2  # number of task ids (forward/backward of a reset-free pair = 2)
    task_embedding_dim: int = 16  # size of the task vector concatenated to the features
    language_dim: int = 0  # >0: tasks are given as precomputed language embeddings of this size (projected); 0 = learned embedding
    hidden_dims: tuple[int, ...] = (256, 256)  # MLP hidden sizes of actor and critic
    num_critics: int = 2  # Q-functions in the critic ensemble (min over them for targets)
    critic_layer_norm: bool = True  # LayerNorm after each hidden layer of the critic
    log_std_min: float = -5.0  # lower clamp of the actor's log standard deviation
    log_std_max: float = 2.0  # upper clamp of the actor's log standard deviation
    encoder: EncoderConfig = field(default_factory=EncoderConfig)  # image encoder

    def __post_init__(self) -> None:
        if isinstance(self.encoder, Mapping):
            self.encoder = EncoderConfig(**self.encoder)
        self.image_keys = tuple(self.image_keys)
        self.hidden_dims = tuple(int(h) for h in self.hidden_dims)
        if self.state_dim < 0:
            raise ValueError(f"network.state_dim must be >= 0, got {self.state_dim!r}")
        if not self.image_keys and self.state_dim == 0:
            raise ValueError("network.image_keys is empty and network.state_dim is 0: the policy would see nothing")
        _positive("network.action_dim", self.action_dim)
        if self.action_chunk < 1:
            raise ValueError(f"network.action_chunk must be >= 1, got {self.action_chunk!r}")
        if not 0 <= self.chunk_steps_run <= self.action_chunk:
            raise ValueError(f"network.chunk_steps_run must be in [0, action_chunk={self.action_chunk}], got {self.chunk_steps_run!r}")
        _positive("network.num_tasks", self.num_tasks)
        if self.task_embedding_dim < 0:
            raise ValueError(f"network.task_embedding_dim must be >= 0, got {self.task_embedding_dim!r}")
        if self.language_dim < 0:
            raise ValueError(f"network.language_dim must be >= 0, got {self.language_dim!r}")
        if not self.hidden_dims or any(h <= 0 for h in self.hidden_dims):
            raise ValueError(f"network.hidden_dims must be positive sizes, got {self.hidden_dims!r}")
        if self.num_critics < 2:
            raise ValueError(f"network.num_critics must be >= 2, got {self.num_critics!r}")
        if not self.log_std_min < self.log_std_max:
            raise ValueError(f"network.log_std_min ({self.log_std_min}) must be < log_std_max ({self.log_std_max})")

    @property
    def steps_per_plan(self) -> int:
        """Actions run from each chunk before the policy plans again (``chunk_steps_run``, 0 = all)."""
        return self.chunk_steps_run or self.action_chunk

    @property
    def chunk_dim(self) -> int:
        """Width of one policy output and critic action input: ``action_chunk * action_dim``."""
        return self.action_chunk * self.action_dim


@dataclass
class CalQLConfig:
    """Cal-QL / CQL / SAC hyper-parameters (defaults follow Nakamoto et al. 2023)."""

    gamma: float = 0.99  # discount
    tau: float = 0.005  # Polyak rate of the target critic (and target encoder)
    actor_lr: float = 1e-4  # actor learning rate
    critic_lr: float = 3e-4  # critic (and encoder) learning rate
    alpha_lr: float = 3e-4  # entropy temperature learning rate (0 = keep the temperature at init_alpha)
    init_alpha: float = 1.0  # initial entropy temperature
    target_entropy: float = 0.0  # 0 = minus the width of a policy output (action_dim x action_chunk; SAC default); otherwise this value
    cql_alpha: float = 5.0  # weight of the conservative term
    cql_n_actions: int = 10  # random / policy actions per state in the conservative term
    cql_temperature: float = 1.0  # temperature of the logsumexp in the conservative term
    calibrate: bool = True  # Cal-QL: clamp policy-action Q-values from below by the MC return (False = plain CQL)
    bc_weight: float = 0.0  # optional BC regulariser on the actor (weight of the BC objective chosen by bc_loss)
    bc_trains_encoder: bool = False  # bc_weight > 0: the BC term also trains the shared encoder (else only the critic does)
    freeze_image_encoder: bool = False  # keep the image encoder (conv + projection) fixed: with policy.init_from a BC policy, the critic learns on its features
    backup_entropy: bool = False  # subtract alpha*log pi in the TD target (Cal-QL default: off)
    augment_pad: int = 4  # DrQ random-shift augmentation in pixels (0 = off)
    grad_clip: float = 0.0  # clip gradient norm of each optimiser step (0 = off)
    q_max: float = 0.0  # cap on TD targets: the largest return an episode can earn (1 for a 0/1 success reward); 0 = off
    floor_targets: bool = False  # floor TD targets at 0, the smallest return of a 0/1 success reward: CQL's push-down on Q cannot then feed on itself through bootstrapping

    def __post_init__(self) -> None:
        if not 0.0 < self.gamma < 1.0:
            raise ValueError(f"calql.gamma must be in (0, 1), got {self.gamma!r}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"calql.tau must be in (0, 1], got {self.tau!r}")
        for name in ("actor_lr", "critic_lr", "init_alpha", "cql_temperature"):
            _positive(f"calql.{name}", getattr(self, name))
        if self.alpha_lr < 0:
            raise ValueError(f"calql.alpha_lr must be >= 0 (0 = a fixed temperature), got {self.alpha_lr!r}")
        if self.cql_alpha < 0:
            raise ValueError(f"calql.cql_alpha must be >= 0, got {self.cql_alpha!r}")
        if self.cql_n_actions < 1:
            raise ValueError(f"calql.cql_n_actions must be >= 1, got {self.cql_n_actions!r}")
        if self.bc_weight < 0 or self.augment_pad < 0 or self.grad_clip < 0 or self.q_max < 0:
            raise ValueError("calql.bc_weight, calql.augment_pad, calql.grad_clip and calql.q_max must be >= 0")
        if self.freeze_image_encoder and self.bc_trains_encoder:
            raise ValueError("calql.bc_trains_encoder has nothing to train when calql.freeze_image_encoder is set")


@dataclass
class LearnerConfig:
    """Everything a learner needs: networks, loss settings, batch and device."""

    network: NetworkConfig = field(default_factory=NetworkConfig)  # networks
    calql: CalQLConfig = field(default_factory=CalQLConfig)  # Cal-QL loss settings
    batch_size: int = 256  # transitions per update (per process in data-parallel training)
    bc_lr: float = 3e-4  # learning rate of the BC learner
    bc_loss: Literal["mse", "nll"] = "mse"  # BC objective (BC learner and Cal-QL's bc_weight term): squared error of tanh(mean), or full likelihood
    bc_data: Literal["all", "successes"] = "all"  # what the BC objective imitates: every transition, or only steps from which the episode succeeded plus human interventions (filtered BC)
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    amp: Literal["auto", "bf16", "off"] = "auto"  # mixed precision: auto = bf16 autocast on CUDA, off on CPU
    compile: Literal["auto", "on", "off"] = "auto"  # torch.compile the networks: auto = on for CUDA, off on CPU (slow to compile)
    channels_last: bool = True  # NHWC memory format for the conv encoder (faster on CPU oneDNN and CUDA)
    num_threads: int = 0  # torch CPU threads: 0 = auto (1 for state-only nets, whose small ops only lose to thread sync; else every core this process may use)
    seed: int = 0  # seed of network initialisation and sampling noise

    def __post_init__(self) -> None:
        if isinstance(self.network, Mapping):
            self.network = NetworkConfig(**{**self.network, "encoder": EncoderConfig(**self.network.get("encoder", {}))})
        if isinstance(self.calql, Mapping):
            self.calql = CalQLConfig(**self.calql)
        _positive("batch_size", self.batch_size)
        _positive("bc_lr", self.bc_lr)
        if self.bc_loss not in ("mse", "nll"):
            raise ValueError(f"bc_loss must be 'mse' or 'nll', got {self.bc_loss!r}")
        if self.bc_data not in ("all", "successes"):
            raise ValueError(f"bc_data must be 'all' or 'successes', got {self.bc_data!r}")
        if self.amp not in ("auto", "bf16", "off"):
            raise ValueError(f"amp must be 'auto', 'bf16' or 'off', got {self.amp!r}")
        if self.compile not in ("auto", "on", "off"):
            raise ValueError(f"compile must be 'auto', 'on' or 'off', got {self.compile!r}")
        if self.num_threads < 0:
            raise ValueError(f"num_threads must be >= 0, got {self.num_threads!r}")
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda") or self.device == "mps"):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda[:N]' or 'mps', got {self.device!r}")

    # ---- presets -------------------------------------------------------------------------
    @classmethod
    def gpu(cls, **overrides: Any) -> "LearnerConfig":
        """Full size (RoboFuME/DrQ): 128x128 images, 4 conv layers 32ch (first stride 2), batch 256."""
        base = cls(network=NetworkConfig(encoder=EncoderConfig(image_size=128, strides=(2, 1, 1, 1))), batch_size=256)
        return _override(base, overrides)

    @classmethod
    def cpu(cls, **overrides: Any) -> "LearnerConfig":
        """CPU-sized: 64x64 images, first two convs strided, batch 128; what the simulated default uses.

        The entropy temperature starts at 0.01 (as SERL does), not the paper's 1.0: the paper's
        temperature decays over ~1M offline updates, while a CPU session pre-trains ~1,000, after
        which alpha was still 0.73 and the policy's entropy +3.4 against its target of -7, so the
        actions sampled online were near-uniform noise (the wrist turned to the horizon) although
        the policy's mean succeeded 70 % of the time.
        """
        base = cls(
            network=NetworkConfig(encoder=EncoderConfig(image_size=64, strides=(2, 2, 1, 1)), hidden_dims=(256, 256)),
            calql=CalQLConfig(init_alpha=0.01),
            batch_size=128,
            device="cpu",
            compile="off",
        )
        return _override(base, overrides)

    @classmethod
    def state(cls, state_dim: int, action_dim: int = 7, **overrides: Any) -> "LearnerConfig":
        """State-only (no camera): small MLPs for low-dimensional tasks and tests."""
        base = cls(
            network=NetworkConfig(image_keys=(), state_dim=state_dim, action_dim=action_dim, hidden_dims=(256, 256)),
            batch_size=256,
            device="cpu",
            compile="off",
        )
        return _override(base, overrides)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "LearnerConfig":
        """Named preset: "cpu" or "gpu" (see those constructors)."""
        if name not in PRESETS:
            raise ValueError(f"unknown learner preset {name!r}; choose one of {sorted(PRESETS)}")
        return getattr(cls, name)(**overrides)

    def to_dict(self) -> dict:
        """Plain JSON-able dict (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LearnerConfig":
        """Inverse of :meth:`to_dict` (used when a checkpoint rebuilds its networks)."""
        return cls(**dict(data))

    def objective_changes(self, saved: Mapping[str, Any]) -> list[str]:
        """What this config trains differently from ``saved`` (another config's :meth:`to_dict`,
        e.g. a checkpoint's): one ``"calql.bc_weight: 30.0 -> 0.0"`` line per loss setting.

        A learner resuming a checkpoint keeps its networks whatever these say, but goes on with
        another objective than the checkpoint was trained with, which is rarely meant (a policy
        pre-trained with a BC term and fine-tuned without one loses it within minutes).
        ``calql.init_alpha`` is left out: a resumed learner restores its temperature.
        """
        now, before = self.to_dict(), dict(saved)
        calql_before = dict(before.get("calql") or {})
        pairs = [(f"calql.{k}", v, calql_before.get(k)) for k, v in now["calql"].items() if k != "init_alpha"]
        pairs += [(k, now[k], before.get(k)) for k in ("batch_size", "bc_loss", "bc_data")]
        return [f"{name}: {old!r} -> {new!r}" for name, new, old in pairs if old is not None and old != new]


PRESETS = ("cpu", "gpu")


def _override(cfg: LearnerConfig, overrides: Mapping[str, Any]) -> LearnerConfig:
    """Apply dotted overrides ("network.encoder.channels": 16) or top-level fields to a preset."""
    for key, value in overrides.items():
        target = cfg
        *path, last = key.replace("__", ".").split(".")
        for part in path:
            target = getattr(target, part)
        if not hasattr(target, last):
            raise ValueError(f"unknown learner config field {key!r}")
        setattr(target, last, value)
    # Re-validate every level after the edits.
    cfg.network.encoder.__post_init__()
    cfg.network.__post_init__()
    cfg.calql.__post_init__()
    cfg.__post_init__()
    return cfg
