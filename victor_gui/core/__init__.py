"""Qt-free building blocks shared by every part of the app (errors, redaction)."""
