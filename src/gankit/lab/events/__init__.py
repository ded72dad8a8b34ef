"""What the lab's server-sent events are made of: ``tail`` follows a run's metrics.jsonl."""

from gankit.lab.events.tail import Tail

__all__ = ["Tail"]
