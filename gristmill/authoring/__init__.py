"""What user code imports: ``@model`` for a Python model, ``@source`` for a Python source.

Users reach them as ``gristmill.model`` and ``gristmill.sources.source`` (and ``gristmill.source``);
this package holds them so that the project loader and the connectors share one definition."""
