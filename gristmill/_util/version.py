"""Gristmill's version, where every layer may read it (``gristmill.__version__`` is the public name;
the package itself sits above every layer, so code inside them reads it here)."""

VERSION = "0.1.0"
