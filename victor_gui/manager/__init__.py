"""Local server manager: discovery, fingerprinting, health monitoring and model management (Qt-free)."""
