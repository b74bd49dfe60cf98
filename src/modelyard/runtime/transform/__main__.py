"""``python -m modelyard.runtime.transform <host_dir>``: run one batch transform host."""

import sys

from modelyard.runtime.transform.host import cli

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
