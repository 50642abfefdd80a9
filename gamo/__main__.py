import sys

from gamo.cli import main

sys.exit(main())
