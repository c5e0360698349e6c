"""`python -m infra up|down|status|env|fetch|clean` -- see infra/stack.py."""
import sys

from infra.stack import main

sys.exit(main(sys.argv[1:]))
