"""The embedded llama.cpp runner. It speaks tokens and role/content turns, never OpenAI JSON."""
