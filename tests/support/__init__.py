"""Test-support code that is not a test: the llama.cpp server build, tiny GGUF models, server
fixtures, response-shape helpers, the memory ground-truth writer, and a llama.cpp simulator
that records clients leaving mid-stream."""
