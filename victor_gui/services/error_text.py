"""What each error type means to a person, in one place (Qt-free: the window and the CLI share it).

The UI never shows a raw exception class or searches message text: it looks the error's type
up here (most specific class first) and shows that sentence, followed by the error's own
(already redacted) message for detail.
"""

from __future__ import annotations

from victor_gui.errors import (
    AttachmentError,
    BadRequestError,
    CABundleError,
    CertificateExpiredError,
    CertificateHostnameError,
    CircuitOpenError,
    ConfigError,
    ContentFilterError,
    ContextLengthExceededError,
    DownloadError,
    EmbeddingServerError,
    EngineError,
    EngineInstallError,
    EngineToolsMissingError,
    GGUFError,
    InvalidResponseError,
    MissingAPIKeyError,
    ModelLoadingError,
    ModelNotFoundError,
    ModelTakesNoImagesError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderNotFoundError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    ResponseStalledError,
    StorageError,
    StoreInUseError,
    TLSError,
    UntrustedCertificateError,
    UpdateError,
    VictorGuiError,
)

NO_LOCAL_SERVER = ("No local server answered. Start Ollama, LM Studio, vLLM or llama-server, "
                   "or add an API key in Settings.")

ERROR_TEXT: dict[type[BaseException], str] = {
    MissingAPIKeyError: "This provider needs an API key. Add one in Settings → API keys.",
    ProviderAuthError: "The provider refused the API key. Check it in Settings → API keys.",
    ProviderRateLimitError: "The provider is rate-limiting requests. Wait a moment and retry.",
    ResponseStalledError: "The server stopped sending before the reply was complete (or ran past its "
                          "deadline); what arrived is kept. Retry, or check the server.",
    ProviderTimeoutError: "The server took too long to answer. It may be busy or stuck; retry.",
    CABundleError: "The endpoint's CA bundle file could not be used; check it in the endpoint's settings.",
    UntrustedCertificateError: "The server's TLS certificate is not trusted.",
    CertificateHostnameError: "The server's TLS certificate is for another host name.",
    CertificateExpiredError: "The server's TLS certificate has expired (or is not valid yet).",
    TLSError: "The TLS connection to the server failed.",
    ProviderConnectionError: "Could not reach the server. Is it running, and is the address right?",
    ModelNotFoundError: "The server does not have that model. Pick another one or download it.",
    ContextLengthExceededError: "The conversation is longer than the model's context window. "
                                "Start a new chat or pick a model with a larger context.",
    ContentFilterError: "The provider's content filter refused this request.",
    BadRequestError: "The server rejected the request as invalid.",
    ModelLoadingError: "The server is still loading the model. Retry in a few seconds.",
    ProviderServerError: "The server failed while answering. Retry, or check its log.",
    InvalidResponseError: "The server's reply was not understood (wrong address or a proxy page?).",
    CircuitOpenError: "This server failed several times in a row; pausing requests to it briefly.",
    ProviderNotFoundError: "No such provider is known.",
    ProviderUnavailableError: "This provider cannot be used in this build yet.",
    ProviderError: "The provider reported an error.",
    ConfigError: "A settings file could not be used as written.",
    StoreInUseError: "Another copy of Victor GUI is using this data folder. Use that window, or close "
                     "it first.",
    StorageError: "The conversation store could not read or write.",
    AttachmentError: "That file cannot be attached.",
    EmbeddingServerError: "The embedding model could not read the document; the sentence says how to fix it.",
    ModelTakesNoImagesError: "This model does not take images; pick one that does or remove the images.",
    GGUFError: "The model file's header could not be read (not a GGUF file, damaged, or implausibly large).",
    DownloadError: "The model download did not complete; the sentence says why (disk space, checksum, "
                   "access, or the Hub).",
    EngineError: "The llama-server could not be started or stopped answering; its log says why.",
    EngineToolsMissingError: "Building the engine needs cmake, make and a C/C++ compiler; install them "
                             "first.",
    EngineInstallError: "The engine could not be built or installed; the end of its build log says why.",
    UpdateError: "The update was not installed; the version you have is unchanged.",
    VictorGuiError: "Something went wrong.",
}


def error_sentence(error: BaseException) -> str:
    """The sentence for ``error``'s most specific known type."""
    for cls in type(error).__mro__:
        if cls in ERROR_TEXT:
            return ERROR_TEXT[cls]
    return "Something unexpected went wrong."


def describe_error(error: BaseException) -> str:
    """The sentence plus the error's own message (already redacted by the error tree)."""
    sentence = error_sentence(error)
    detail = getattr(error, "message", None) or str(error)
    return f"{sentence} ({detail})" if detail and detail not in sentence else sentence


def missing_key_sentence(display_name: str, env_vars: tuple[str, ...] | list[str]) -> str:
    """What to do when ``display_name`` has no key, naming the variable it reads
    ("OpenAI needs a key: set OPENAI_API_KEY, or save one in Settings → API keys")."""
    names = " or ".join(env_vars)
    where = f"set {names}, or save one" if names else "save one"
    return f"{display_name} needs a key: {where} in Settings → API keys."
