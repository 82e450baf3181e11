"""One module per page: a ``data`` function shaping what it shows (plain values), and ``mount``
adding its routes. Registered in ``gristmill/ui/registry.py``."""
