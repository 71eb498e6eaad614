"""How to talk to a backend: the Backend protocol and its implementations."""
