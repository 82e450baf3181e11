"""Executes plans, one subpackage per verb: ``run`` (the run loop, steps, runner, lock, events,
check runs), ``build`` (materialize, audit, quarantine, hooks), ``load`` (source tables into the
lake), ``schedule`` and ``notify``. Nothing is imported here, so that importing one part (the CLI
imports the events for its progress output) does not import the others."""
