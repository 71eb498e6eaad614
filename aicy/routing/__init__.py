"""Which backend serves a request: the model catalog and the candidate list (pure; no I/O)."""
