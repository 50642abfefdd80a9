"""``python -m gamo``: the command line. Ctrl-C at any point, even while the modules load,
ends with one line and exit code 130 (a run being trained is checkpointed first)."""
import sys

try:
    from gamo.cli import main

    code = main()
except KeyboardInterrupt:
    print("interrupted (Ctrl-C)", file=sys.stderr)
    code = 130
sys.exit(code)
