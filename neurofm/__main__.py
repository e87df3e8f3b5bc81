"""``python -m neurofm`` runs the command-line interface."""

from neurofm.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
