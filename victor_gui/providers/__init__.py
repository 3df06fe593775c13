"""Providers: the contract, the registry, and one module per wire protocol (``protocols/``)."""
