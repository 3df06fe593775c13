"""Shared test support: the llama.cpp simulator with a record of clients leaving mid-stream."""
