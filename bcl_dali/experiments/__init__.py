"""Experiments made of runs and evaluations (BCL against its baseline, group by group); apart from
the throughput benchmarks. May import everything in bcl_dali.
"""
