"""Data-quality benchmark: 15 checks on a 10M-row table, by Gristmill, hand-written SQL and Soda Core v3."""
