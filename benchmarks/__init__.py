"""Throughput measurements (pipeline, step, train), the census of a GPU iteration, and the GPU check."""
