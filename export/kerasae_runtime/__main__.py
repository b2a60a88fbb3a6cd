import sys

from kerasae_runtime.cli import main

sys.exit(main())
