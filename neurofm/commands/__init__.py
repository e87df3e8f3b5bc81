"""Sub-commands of the ``neurofm`` command line, one module each (``register(subparsers)``)."""
