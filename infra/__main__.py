"""`python -m infra up|down|status|env|fetch|clean` -- see infra/command.py."""
import sys

from infra.command import main

sys.exit(main(sys.argv[1:]))
