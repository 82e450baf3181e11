"""Bookkeeping kept in the lake with the data, written in the data's own transactions: table
versions, environment pointers, built intervals and partitions, incremental cursors, stream
offsets; what planning reads of them (``lake_state``) and the janitor that drops what nothing
serves."""
