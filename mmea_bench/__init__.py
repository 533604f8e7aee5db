"""mmea-bench: a plugin-based benchmarking harness for multi-modal entity alignment."""

import os

# torch backs its CPU tensors of 2 MB and more with transparent huge pages when this is set before its first
# allocation: a training step's batch similarity matrices (hundreds of MB each, allocated afresh every batch) then
# take 512 times fewer page faults (benchmarks/README.md). THP_MEM_ALLOC_ENABLE=0 in the environment turns it off.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
