"""Dashboards as code: ``dashboards/*.md`` in a project, Markdown with SQL, metric and chart blocks.

``specs`` parses a file, ``loading`` checks a project's files at load time (imported by the
project loader, so it and ``specs`` import nothing of the layers above the project); ``reading``
runs the blocks on the served tables through the SQL guard, ``charts`` compiles chart blocks to
Vega-Lite, ``render`` writes the page (cached by data version), ``router`` serves it and
``build`` writes static copies. Nothing is imported here: the loader's import stays small."""
