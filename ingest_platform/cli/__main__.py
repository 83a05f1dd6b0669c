import sys

from ingest_platform.cli import main

sys.exit(main())
