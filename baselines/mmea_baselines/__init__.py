"""Baseline MMEA methods, registered through the ``mmea_bench`` entry points like any third-party plugin."""
