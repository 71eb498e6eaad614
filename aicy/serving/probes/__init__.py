"""Probes: fixed prompts asked of a channel over time, and checks that it serves the model it claims."""
