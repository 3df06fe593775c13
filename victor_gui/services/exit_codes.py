"""The exit codes of ``victor-gui chat``, one per kind of failure (a light module: the CLI's
parser needs the help text without importing the chat machinery)."""

from __future__ import annotations

from victor_gui.errors import (
    AttachmentError,
    CircuitOpenError,
    ContextLengthExceededError,
    ModelNotFoundError,
    ModelTakesNoImagesError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderNotFoundError,
    ProviderRateLimitError,
    ProviderTimeoutError,
    VictorGuiError,
)

EXIT_OK = 0
EXIT_OTHER = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_CONNECTION = 4
EXIT_MODEL_NOT_FOUND = 5
EXIT_RATE_LIMIT = 6
EXIT_CONTEXT_LENGTH = 7
EXIT_ATTACHMENT = 8
EXIT_INTERRUPTED = 130


class UsageError(VictorGuiError):
    """The command line asks for something that cannot be done as given (no such profile or
    endpoint, no model named, an empty prompt)."""


# Most specific first: the first class in an error's MRO that is listed wins.
EXIT_CODES: dict[type[BaseException], int] = {
    UsageError: EXIT_USAGE,
    ProviderNotFoundError: EXIT_USAGE,
    ProviderAuthError: EXIT_AUTH,  # includes a missing key and a refused clear-text key
    ProviderConnectionError: EXIT_CONNECTION,
    ProviderTimeoutError: EXIT_CONNECTION,
    CircuitOpenError: EXIT_CONNECTION,
    ModelNotFoundError: EXIT_MODEL_NOT_FOUND,
    ProviderRateLimitError: EXIT_RATE_LIMIT,
    ContextLengthExceededError: EXIT_CONTEXT_LENGTH,
    AttachmentError: EXIT_ATTACHMENT,
    ModelTakesNoImagesError: EXIT_ATTACHMENT,
}

EXIT_CODE_HELP = """exit codes:
  0    the answer was printed (and saved unless --no-save)
  1    any other error (server error, bad request, storage, settings)
  2    usage: bad arguments, unknown provider/profile/endpoint, no model, empty prompt
  3    authentication: key missing, refused (401/403), or not sent over plain http
  4    connection: nothing answered, timed out (--timeout), or the server is failing repeatedly
  5    the server does not have that model
  6    rate limited (429) after the retries
  7    the conversation is longer than the model's context window
  8    an --attach file cannot be read or converted, or the model does not take images
  130  interrupted (Ctrl-C)"""


def exit_code_for(error: BaseException) -> int:
    """The exit code for ``error`` (see :data:`EXIT_CODE_HELP`)."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_OTHER


__all__ = ["EXIT_CODES", "EXIT_CODE_HELP", "UsageError", "exit_code_for"]
