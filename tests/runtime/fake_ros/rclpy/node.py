import time


class _Param:
    def __init__(self, value):
        self.value = value


class _Timer:
    def __init__(self, period, callback):
        self.period, self.callback, self.cancelled = period, callback, False
        self.due = time.monotonic() + period

    def cancel(self):
        self.cancelled = True


class _Clock:
    def now(self):
        class T:
            nanoseconds = 1_500_000_000
        return T()


class _Publisher:
    def __init__(self, node, topic):
        self.node, self.topic = node, topic

    def publish(self, msg):
        assert isinstance(msg, bytes), "the adapter must publish serialized bytes"
        for node, cb in self.node.context.topics.get(self.topic, []):
            node.executor.queue.append((cb, msg))

    def get_subscription_count(self):
        return len(self.node.context.topics.get(self.topic, []))


class Node:
    def __init__(self, name, namespace="/", context=None, allow_undeclared_parameters=False,
                 automatically_declare_parameters_from_overrides=False):
        self.name, self.namespace, self.context = name, namespace, context
        # overrides as rcl would have parsed them from --ros-args
        import rclpy

        self._parameters = {"use_sim_time": _Param(False)}
        args = rclpy.INIT_ARGS[-1]
        for i, a in enumerate(args):
            if a == "-p":
                k, _, v = args[i + 1].partition(":=")
                import yaml

                self._parameters[k] = _Param(yaml.safe_load(v))
        self.timers, self.publisher_types = [], {}
        self.destroyed = False

    def has_parameter(self, name):
        return name in self._parameters

    def declare_parameter(self, name, value):
        self._parameters[name] = _Param(value)

    def create_publisher(self, msg_cls, topic, qos):
        self.publisher_types[topic] = msg_cls
        return _Publisher(self, topic)

    def create_subscription(self, msg_cls, topic, callback, qos, raw=False):
        assert raw, "the adapter must subscribe raw (serialized bytes)"
        self.context.topics.setdefault(topic, []).append((self, callback))
        return object()

    def count_publishers(self, topic):
        return 1

    def create_timer(self, period, callback):
        t = _Timer(period, callback)
        self.timers.append(t)
        return t

    def get_clock(self):
        return _Clock()

    def destroy_node(self):
        self.destroyed = True
