"""One module per wire protocol, each serving the providers declared with that protocol."""
