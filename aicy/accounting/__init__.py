"""Money and access rules (keys, principals); no SQL."""
