"""Training: state and checkpoints, the D and G steps, and the loop that runs Algorithm 1."""

from gankit.train.loop import Run, TrainingDiverged, train

__all__ = ["Run", "TrainingDiverged", "train"]
