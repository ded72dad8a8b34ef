"""The training engine: one lifecycle (``lifecycle``) for every task (``task``), and the GAN's
building blocks: its state and checkpoints (``state``), the D and G steps of Algorithm 1
(``step``), DiffAugment (``augment``), torchrun (``distributed``) and CycleGAN's image pool.

The tasks themselves live in ``gankit.tasks``; ``gankit.fit`` trains one."""
