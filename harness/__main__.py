"""``python -m harness``: the same command as ``run_bench.py``."""
import sys

from .cli import main

sys.exit(main())
