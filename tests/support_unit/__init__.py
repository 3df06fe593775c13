"""Unit tests of the test-support helpers in tests/support (no server needed)."""
