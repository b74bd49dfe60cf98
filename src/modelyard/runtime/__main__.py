"""``python -m modelyard.runtime <host_dir>``: run one job host (see :mod:`.host`)."""

import sys

from modelyard.runtime.host import cli

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
