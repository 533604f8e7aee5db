"""``python -m mmea_bench``: the command line."""

from mmea_bench.cli import main

main()
