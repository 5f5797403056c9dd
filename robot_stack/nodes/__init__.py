"""Node registry: ``robot-stack node <name>`` looks names up here.

Each row maps a node name to ``"module:Class"`` (a subclass of ``robot_stack.runtime.Node``);
modules are imported only when that node starts. Add your node with one row.
"""

NODES: dict[str, str] = {
    # the fine-tuning graph
    "controller": "robot_stack.nodes.controller:ControllerNode",
    "camera": "robot_stack.nodes.camera:CameraNode",
    "actor": "robot_stack.nodes.actor:ActorNode",
    "reward": "robot_stack.nodes.reward:RewardNode",
    "learner": "robot_stack.nodes.learner:LearnerNode",
    "teleop": "robot_stack.nodes.teleop:TeleopNode",
    "dashboard": "robot_stack.dashboard.node:DashboardNode",
    # tiny nodes used by the runtime's tests and examples
    "talker": "robot_stack.nodes.demo:Talker",
    "echo": "robot_stack.nodes.demo:Echo",
    "stubborn": "robot_stack.nodes.demo:Stubborn",
}
