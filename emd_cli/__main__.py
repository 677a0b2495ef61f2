import sys

from emd_cli.main import main

sys.exit(main())
