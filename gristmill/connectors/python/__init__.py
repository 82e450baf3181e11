"""Python functions as sources: a ``kind: python`` source calls the functions ``@source`` marks
(``gristmill.authoring.sources``), in ``source.py``."""
