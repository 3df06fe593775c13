"""Settings, Victor profiles and keyring-only secrets."""
