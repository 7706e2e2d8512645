"""The training loop and what it owns: the trainer, BCL's momentum loss, the learning-rate schedule,
the optimisers, the CUDA-graphed step, synchronised BatchNorm, the executor of a run and the
memorisation statistics.

May import the config, methods, data, runs, policy and every layer below; not the use cases
(bcl_dali.training, bcl_dali.evaluation) or the reports.
"""
