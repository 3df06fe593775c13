"""What ``victor-gui chat`` is asked (:class:`ChatRequest`, filled from an assistant by
:func:`with_assistant`) and how the turn ended (:class:`ChatOutcome`, its ``--json`` object).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from victor_gui.errors import ProviderError
from victor_gui.services.exit_codes import UsageError
from victor_gui.services.tool_types import ToolSource


@dataclass
class ChatRequest:
    """What ``victor-gui chat`` was asked. At most one of ``profile``/``endpoint``/``provider``
    picks the target; none falls back to the settings' default profile, then default provider.

    ``retries`` replaces the provider's retry count (0: fail on the first 429/5xx);
    ``timeout`` bounds the whole turn in seconds. ``settings_path``/``data_dir`` default to the
    app's own (``settings.data_dir``, else the platform's data folder)."""

    prompt: str
    provider: str | None = None
    model: str | None = None
    profile: str | None = None
    endpoint: str | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    retries: int | None = None
    scan_processes: bool = True  # nothing named: look for server processes on other ports too
    save: bool = True
    settings_path: Path | None = None
    data_dir: Path | None = None
    victor_profiles: Path | None = None
    app_profiles: Path | None = None
    # ``--tools NAME[,NAME]``: the MCP servers whose tools the model may call; ``--approve-tools``
    # runs every call (else only those a saved approval allows). ``tool_source`` replaces the
    # MCP host (tests, embedding); None builds it from mcp.json when tools are asked for.
    tools: list[str] = field(default_factory=list)
    approve_tools: bool = False
    tool_source: ToolSource | None = None
    # ``--assistant NAME``: its provider, model, system prompt, parameters and tools fill what
    # the command line left out (services/assistants.py); the file defaults to the one beside
    # the settings. ``sampling``: parameters under the neutral names of providers/params.py.
    assistant: str | None = None
    assistants_path: Path | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    # ``--attach FILE`` (repeatable): images and documents sent with the prompt, as the window does.
    attachments: list[Path] = field(default_factory=list)


@dataclass
class ChatOutcome:
    """How the turn ended: the reply, who gave it, its figures, and the way there."""

    text: str = ""
    reasoning: str = ""
    provider: str | None = None
    model: str | None = None
    endpoint: str | None = None
    endpoint_name: str | None = None
    status: str = "complete"
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    cost: float | None = None
    fallback: list[dict[str, Any]] = field(default_factory=list)
    conversation_id: int | None = None
    warnings: list[str] = field(default_factory=list)
    error: ProviderError | None = None
    # The tool calls of the reply (``--tools``): server, tool, arguments, state, result,
    # duration_s, approved_by; None when no tools were asked for.
    tool_calls: list[dict[str, Any]] | None = None
    # With ``--attach``: the files as stored (AttachmentRef fields) and the passages the reply's
    # documents were retrieved from (empty when they went in whole).
    attachments: list[dict[str, Any]] | None = None
    sources: list[dict[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object (no secrets: errors are redacted by the error tree)."""
        out: dict[str, Any] = {
            "text": self.text, "reasoning": self.reasoning, "provider": self.provider,
            "model": self.model, "endpoint": self.endpoint, "endpoint_name": self.endpoint_name,
            "status": self.status, "usage": self.usage, "timings": self.timings, "cost": self.cost,
            "fallback": self.fallback, "conversation_id": self.conversation_id,
        }
        if self.tool_calls is not None:
            out["tool_calls"] = self.tool_calls
        if self.attachments is not None:
            out["attachments"] = self.attachments
            out["sources"] = self.sources or []
        if self.warnings:
            out["warnings"] = self.warnings
        return out


async def with_assistant(request: ChatRequest) -> ChatRequest:
    """``request`` with the assistant it names filling what the command line left out: a
    provider and model (unless ``--provider``/``--profile``/``--endpoint`` chose), the system
    prompt, temperature, max tokens, the other parameters and the tools. Raises
    :class:`UsageError` when there is no such assistant (naming the ones there are)."""
    from dataclasses import replace

    from victor_gui.config.settings import settings_path
    from victor_gui.services.assistants import FILE_NAME, Assistants

    path = request.assistants_path or (request.settings_path or settings_path()).with_name(FILE_NAME)
    assistants = Assistants(path)
    wanted = (request.assistant or "").strip().lower()
    known = await assistants.load()
    assistant = next((a for a in known if a.name.lower() == wanted), None)
    if assistant is None:
        names = ", ".join(a.name for a in known) or "none yet (save one in the window)"
        raise UsageError(f"There is no assistant named {request.assistant!r} in {path}. Assistants: {names}.")
    chose = request.provider or request.profile or request.endpoint
    params = dict(assistant.params)
    temperature, max_tokens = params.pop("temperature", None), params.pop("max_tokens", None)
    return replace(
        request,
        provider=request.provider or (None if chose else assistant.provider),
        model=request.model or (None if chose else assistant.model),
        system=request.system if request.system is not None else (assistant.system_prompt or None),
        temperature=request.temperature if request.temperature is not None else temperature,
        max_tokens=request.max_tokens if request.max_tokens is not None else max_tokens,
        sampling={**params, **request.sampling},
        tools=request.tools or list(assistant.tools or []),
    )
