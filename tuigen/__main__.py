import sys

from tuigen.cli import main

sys.exit(main())
