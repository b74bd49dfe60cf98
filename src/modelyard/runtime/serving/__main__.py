"""``python -m modelyard.runtime.serving <instance_dir>``: run one model-server instance."""

import sys

from modelyard.runtime.serving.instance import cli

if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
