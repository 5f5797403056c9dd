"""Learner service node: trains in a background thread, publishes metrics and policy versions.

Runs on the robot PC or on a separate GPU machine that only shares the episode store and the
checkpoint directory; the topics are for the dashboard and are not needed for learning.
"""

from __future__ import annotations

import json
import threading

from robot_stack.learner.service import LearnerService, LearnerServiceConfig
from robot_stack.runtime import Node, msgs, qos


class LearnerNode(Node):
    name = "learner"
    Config = LearnerServiceConfig

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.pub_metrics = self.create_publisher(msgs.String, "learner/metrics", qos.DEFAULT)
        self.pub_version = self.create_publisher(msgs.Int32, "learner/policy_version", qos.DEFAULT)
        self.service = LearnerService(self.cfg)
        self._published_version = -1
        self._thread = threading.Thread(target=self._train, name="learner", daemon=True)
        self._thread.start()
        self.create_timer(1.0, self.publish)
        self.get_logger().info(f"learner up: {self.cfg.policy.kind}/{self.cfg.policy.preset} on "
                               f"{self.service.learner.device}, resumed v{self.service.version}, "
                               f"replay {self.service.loader.sizes()}")

    def _train(self) -> None:
        try:
            self.service.run()
        except Exception as exc:  # noqa: BLE001 - a dead training thread must take the node down loudly
            self.get_logger().exception("training failed")
            self.request_shutdown(error=f"learner training failed: {type(exc).__name__}: {exc}")

    def publish(self) -> None:
        metrics = self.service.snapshot()
        if metrics:
            self.pub_metrics.publish(msgs.String(data=json.dumps(metrics)))
        if self.service.version != self._published_version:
            self._published_version = self.service.version
            self.pub_version.publish(msgs.Int32(data=int(self.service.version)))

    def on_shutdown(self) -> None:
        self.service.stop()
        self._thread.join(timeout=60)
