"""Evaluation of any backbone on any data set: features of un-augmented images, linear probes, kNN,
Many / Medium / Few groups, and the `Evaluation` result every table, page and experiment reads.

May import bcl_dali.data, errors, split and pipelines; nothing of configs, runs or training: what to
evaluate comes in as a model and a data set (the `eval` use case, bcl_dali.evaluation, loads them).
"""
