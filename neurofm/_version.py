"""The version of neurofm: the one source that packaging, ``neurofm --version`` and written files
read (importing it imports nothing else of neurofm)."""

__version__ = "0.2.0.dev0"
