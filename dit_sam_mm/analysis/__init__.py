"""Measurement behind ``tools/analysis_tools/benchmark.py``: training and inference throughput
(``benchmark``), where the time goes (``profiling``) and what the activations cost
(``activation_memory``)."""
