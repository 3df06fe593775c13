"""Where local servers listen: the seed's environment variables, parsed the way each server
parses them.

``OLLAMA_HOST`` follows Ollama's own rules (``envconfig.Host``): ``[scheme://]host[:port][/path]``,
no scheme and no port means 11434, ``http://`` without a port means 80, ``https://`` means 443.
``VICTOR_LM_STUDIO_HOST``, ``VICTOR_VLLM_HOST`` and ``VICTOR_LLAMACPP_HOST`` take ``host:port``
or a full URL. ``OLLAMA_ENDPOINTS`` and ``LMSTUDIO_ENDPOINTS`` are comma lists tried in order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from victor_gui.providers.catalog import ProviderSpec, find_spec

OLLAMA_DEFAULT_PORT = 11434


def parse_ollama_host(value: str) -> str:
    """The base URL a client should use for an ``OLLAMA_HOST`` value."""
    raw = value.strip().strip("\"'")
    if not raw:
        return f"http://127.0.0.1:{OLLAMA_DEFAULT_PORT}"
    if raw == "ollama.com":
        return "https://ollama.com:443"
    scheme, sep, rest = raw.partition("://")
    default_port = OLLAMA_DEFAULT_PORT
    if not sep:
        scheme, rest = "http", raw
    else:
        scheme = scheme.lower()
        # Ollama: only http:// and https:// change the default port; other schemes keep 11434.
        default_port = {"http": 80, "https": 443}.get(scheme, OLLAMA_DEFAULT_PORT)
    hostport, _, path = rest.partition("/")
    host, port = _split_host_port(hostport)
    host = _reachable(host)
    url = f"{scheme}://{host}:{port or default_port}"
    path = path.strip("/")
    return f"{url}/{path}" if path else url


def _split_host_port(hostport: str) -> tuple[str, int | None]:
    if hostport.startswith("["):  # [ipv6]:port
        end = hostport.find("]")
        host = hostport[: end + 1]
        rest = hostport[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    elif hostport.count(":") == 1:
        host, port = hostport.split(":")
    elif hostport.count(":") > 1:  # bare IPv6 without brackets
        return f"[{hostport}]", None
    else:
        host, port = hostport, ""
    try:
        number = int(port) if port else None
    except ValueError:
        return host, None
    # Out-of-range ports fall back to the default, as Ollama's envconfig does.
    return host, number if number is not None and 0 < number <= 65535 else None


def _reachable(host: str) -> str:
    """A server bound to every interface (or to an empty host) is reached on loopback."""
    if not host or host == "0.0.0.0":
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "[::1]"
    return host


def host_to_base_url(value: str, *, path: str = "/v1") -> str:
    """A ``host:port`` or URL value turned into a base URL ending in ``path`` (once)."""
    raw = value.strip().strip("\"'").rstrip("/")
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    netloc = parts.netloc
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ""
    if _reachable(host) != host and "@" not in netloc:
        netloc = _reachable(host) + (f":{port}" if port else "")
    base = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
    if path and not base.endswith(path):
        base += path
    return base


def split_list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def env_base_urls(spec: ProviderSpec, env: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """``(variable, base URL)`` for every address the seed's variables give a local server, in the
    catalog row's lookup order (``host_env_vars``; ``*_ENDPOINTS`` variables are comma lists).

    Ollama's values follow Ollama's own rules and give the server root; the OpenAI-speaking
    servers' values give a base URL ending in ``/v1``. Not for cloud rows (Azure's endpoint
    variable names a resource, not a server).
    """
    if not spec.is_local:
        return []
    env = os.environ if env is None else env
    parse = parse_ollama_host if spec.protocol == "ollama" else host_to_base_url
    found: list[tuple[str, str]] = []
    for var in spec.host_env_vars:
        values = split_list(env.get(var)) if var.endswith("_ENDPOINTS") else [env.get(var) or ""]
        found += [(var, parse(value)) for value in values if value.strip()]
    return found


def candidate_base_urls(
    provider: str,
    default: str | None,
    *,
    explicit: str | None = None,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """Base URLs to try for a local provider, most specific first, without duplicates.

    An explicit ``base_url`` wins outright. Otherwise the seed's variables (in the catalog row's
    order, :func:`env_base_urls`) come before the default.
    """
    if explicit:
        return [explicit.rstrip("/")]
    spec = find_spec(provider)
    found = [url for _var, url in env_base_urls(spec, env)] if spec is not None else []
    if default:
        found.append(default)
    out: list[str] = []
    for url in found:
        url = url.rstrip("/")
        if url not in out:
            out.append(url)
    return out
