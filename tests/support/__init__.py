"""Shared test support: a small OpenAI-style SSE simulator and a stand-in provider for it."""
