"""Lucid benchmarks: `python -m bench` (see bench/__main__.py and docs/benchmarks.md).

Speed and memory goals are measured here, as ratios against baselines measured
in the same run on the same machine, never as timed assertions in tests: the
machine is shared and noisy, so every suite repeats and reports medians.
"""
