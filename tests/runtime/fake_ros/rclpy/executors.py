import time


class SingleThreadedExecutor:
    def __init__(self, context=None):
        self.context, self.nodes, self.queue = context, [], []

    def add_node(self, node):
        self.nodes.append(node)
        node.executor = self

    def remove_node(self, node):
        self.nodes.remove(node)

    def spin_once(self, timeout_sec=None):
        if self.queue:
            cb, data = self.queue.pop(0)
            cb(data)
            return
        now = time.monotonic()
        for node in self.nodes:
            for t in node.timers:
                if not t.cancelled and now >= t.due:
                    t.due = now + t.period
                    t.callback()
                    return
        time.sleep(min(timeout_sec or 0.0, 0.005))

    def wake(self):
        pass

    def shutdown(self):
        self.nodes.clear()
