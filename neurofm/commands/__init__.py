"""Sub-commands of the ``neurofm`` command line, one module each (``register(subparsers)``).

A command module imports at its top only what builds its parser; its run function imports the
library code it calls, so that ``neurofm --help`` and ``neurofm CMD --help`` need no torch.
"""
