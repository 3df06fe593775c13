"""Integration tier: tests against a real llama.cpp llama-server (marker `llamacpp`)."""
