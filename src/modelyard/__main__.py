"""``python -m modelyard`` is the ``modelyard`` command."""

from modelyard.cli.main import main

if __name__ == "__main__":
    main()
