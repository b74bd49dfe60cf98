"""Entry point of a built-in XGBoost job process."""

import sys

from .entrypoint import main

if __name__ == "__main__":
    sys.exit(main())
