"""Test-support code that is not a test: the llama.cpp server build, tiny GGUF models, server
fixtures, response-shape helpers and the memory ground-truth writer."""
