"""The augmentation: the parameter contract (params, table, slot kernels, ops), the torch stages, the
DALI executor with its input stages and graph, and the PIL reference executor it is checked against.

Imports nothing of bcl_dali: an image source hands it a `pipelines.inputs` input, and everything it
augments comes in as an epoch plan.
"""
