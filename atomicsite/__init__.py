"""atomicsite: atomic, content-addressed static site deploys to your own bucket."""

__version__ = "0.1.0"
