#!/usr/bin/env python
"""sla-bench: does swapping a classifier's pooling for SLA (or SAN, attention, MHAP) help? See README.md."""
import sys

from harness.cli import main

if __name__ == "__main__":
    sys.exit(main())
