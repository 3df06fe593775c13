"""Qt-free application services: the logic the UI drives (generation, later the chat session)."""
