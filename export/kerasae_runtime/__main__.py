import sys

from kerasae_runtime.cli import main

if __name__ == "__main__":  # not in the helper processes that re-import the main module
    sys.exit(main())
