"""Loading a source table into the lake: reading batches, shaping nested data into child tables,
holding the table to its contract and writing it."""
