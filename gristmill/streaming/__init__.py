"""Stream models: micro-batches from a broker through a model's SQL into the lake, exactly once.

``loop`` runs one model; ``writer`` writes one batch in one transaction; ``statements`` builds
the SQL that batch runs (ASTs); ``twophase`` keeps decomposable windows as partial aggregates;
``watermarks`` decides when windows close; ``outbox`` publishes emitted rows; ``settings`` and
``stats`` are what the CLI passes in and shows; ``faults`` is the hook the crash tests use.
Nothing is re-exported here, so importing one of them does not import the loop (and pyarrow)."""
