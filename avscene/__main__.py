import sys

from avscene.cli import main

sys.exit(main())
