"""One module per CLI command; each only parses arguments and delegates to the core."""
