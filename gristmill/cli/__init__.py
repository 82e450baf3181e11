"""The command line: parses input, calls the workspace, renders output. No logic of its own."""
