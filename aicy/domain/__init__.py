"""The shared vocabulary every layer may use: models and prices, key policies and principals, channels.

Pure data and pure functions only (no I/O, no imports from other aicy packages but ``types``/``errors``).
"""
