class Context:
    def __init__(self):
        self.ok = False
        self.topics = {}  # name -> list of (callback, raw)
