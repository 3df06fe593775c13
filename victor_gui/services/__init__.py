"""Qt-free application services: what the UI drives (chat sessions, one streamed reply, ...)."""
