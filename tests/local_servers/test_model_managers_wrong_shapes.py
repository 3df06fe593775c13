"""Model management over HTTP reads wrong-shape JSON as InvalidResponseError naming the field
(issue 16, finding 8): LM Studio REST v1 list/load/download, llama.cpp router ``/models``.
Our own loopback server answers each route; every case must raise InvalidResponseError, never
AttributeError/TypeError/ValueError/OverflowError."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.servers.hostile import Raw, reply, serving
from victor_gui.errors import InvalidResponseError
from victor_gui.servers.models import LlamaCppModels, LMStudioModels


async def _download(manager: LMStudioModels) -> list[Any]:
    return [p async for p in manager.download("m")]


Run = Callable[[Any], Awaitable[Any]]
LMS_LIST: Run = lambda m: m.list()  # noqa: E731
LMS_LOAD: Run = lambda m: m.load("m")  # noqa: E731
LLAMA_LIST: Run = lambda m: m.list()  # noqa: E731
JOB = {"job_id": "j1", "status": "downloading", "total_size_bytes": 10}

CASES: list[tuple[str, Run, dict[str, Any], str]] = [
    ("lms-list-config", LMS_LIST,
     {"/api/v1/models": {"models": [{"key": "m", "loaded_instances": [{"config": "x"}]}]}},
     "LM Studio /api/v1/models: models[0].loaded_instances[0].config is a string, not an object"),
    ("lms-list-number", LMS_LIST, {"/api/v1/models": {"models": [1]}},
     "models[0] is a number, not an object"),
    ("lms-list-size", LMS_LIST, {"/api/v1/models": {"models": [{"key": "m", "size_bytes": "1GB"}]}},
     "models[0].size_bytes is a string"),
    ("lms-list-instances", LMS_LIST, {"/api/v1/models": {"models": [{"key": "m", "loaded_instances": 3}]}},
     "models[0].loaded_instances is a number, not a list"),
    ("lms-load-id", LMS_LOAD, {"/api/v1/models/load": {"instance_id": 5}}, "instance_id is a number"),
    ("lms-load-time", LMS_LOAD, {"/api/v1/models/load": {"load_time_seconds": "fast"}},
     "load_time_seconds is a string"),
    ("lms-download-total", _download,
     {"/api/v1/models/download": Raw('{"status":"completed","total_size_bytes":1e400}')},
     "total_size_bytes is inf"),
    ("lms-download-progress", _download,
     {"/api/v1/models/download": JOB,
      "/api/v1/models/download/status/j1": {"status": "downloading", "downloaded_bytes": "half"}},
     "downloaded_bytes is a string"),
    ("lms-download-job", _download, {"/api/v1/models/download": {"status": "downloading", "job_id": 7}},
     "job_id is a number"),
    ("llama-list-list", LLAMA_LIST, {"/models": [1]},
     "llama.cpp /models: the reply is a list, not an object"),
    ("llama-list-status", LLAMA_LIST, {"/models": {"data": [{"id": "m", "status": "loaded"}]}},
     "data[0].status is a string, not an object"),
    ("llama-list-data", LLAMA_LIST, {"/models": {"data": {"id": "m"}}}, "data is an object, not a list"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
async def test_manager_reply_of_the_wrong_shape(client: httpx.AsyncClient,
                                                case: tuple[str, Run, dict[str, Any], str]) -> None:
    name, run, routes, expected = case
    with serving({path: reply(body) for path, body in routes.items()}) as server:
        manager = (LlamaCppModels if name.startswith("llama") else LMStudioModels)(client, server.url)
        with pytest.raises(InvalidResponseError) as caught:
            await run(manager)
    assert expected in caught.value.message, caught.value.message
