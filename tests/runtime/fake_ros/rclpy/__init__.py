"""Fake rclpy (test double): only what robot_stack.runtime.rclpy_backend uses."""

INIT_ARGS = []


def init(args=None, context=None):
    INIT_ARGS.append(list(args or []))
    context.ok = True


def try_shutdown(context=None):
    context.ok = False
