import sys

from verb.cli import main

sys.exit(main())
