"""mmea-bench: a plugin-based benchmarking harness for multi-modal entity alignment."""
