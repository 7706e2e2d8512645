"""A run directory and what is kept in it: config.json, metrics, checkpoints, evaluations, left-out
files, the lock that keeps one writer at a time, and output paths checked before any work.

May import bcl_dali.errors and atomic only: what the files hold (configs, evaluations) is read by the
rooms above as plain JSON and tensors.
"""
