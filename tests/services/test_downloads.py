"""The download manager against the Hub simulator on 127.0.0.1, with real files in tmp_path:
progress, pause/resume by HTTP range, cancel, a dropped connection resumed, a corrupt file caught
by its sha256 and deleted, split parts together, gated repos and the token, the disk checked
first, nothing downloaded twice, and a restart that brings the job back paused."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bench.xvfb import until
from tests.config.memory_keyring import MemoryKeyring, use_backend
from tests.servers.hub import HubFile, HubRepo, HubServer
from tests.support.wine_gaps import NO_SYMLINKS, wine_gap
from victor_gui.config.secrets import KeyringStore
from victor_gui.config.settings import ModelFolderSettings, Settings
from victor_gui.errors import DownloadError
from victor_gui.providers.http import make_client
from victor_gui.providers.keys import set_secret_store
from victor_gui.services.downloads import DownloadEvent, DownloadManager, JobState
from victor_gui.services.model_folders import ModelFolders

REPO = "bartowski/Tiny-GGUF"
PAYLOAD = os.urandom(600_000)
SMALL = os.urandom(40_000)
PARTS = [os.urandom(300_000), os.urandom(200_000)]  # several of the simulator's 64 KiB chunks


class _Settings:
    """The one thing ModelFolders reads from the settings service: ``.settings``."""

    def __init__(self, **model_folders: object) -> None:
        self.settings = Settings(model_folders=ModelFolderSettings.model_validate(model_folders))


class BigFile(HubFile):
    """A file the Hub describes as far larger than any disk (the transfer never starts)."""

    @property
    def size(self) -> int:
        return 1 << 60


@pytest.fixture
def hub() -> Iterator[HubServer]:
    repos = [
        HubRepo(REPO, [HubFile("Tiny-Q4_K_M.gguf", PAYLOAD), HubFile("Tiny-Q8_0.gguf", SMALL),
                       HubFile("Split-00001-of-00002.gguf", PARTS[0]),
                       HubFile("Split-00002-of-00002.gguf", PARTS[1]),
                       BigFile("Huge-F32.gguf", b"x" * 10, sha256="0" * 64)]),
        HubRepo("meta/Gated-GGUF", [HubFile("gated.gguf", SMALL)], gated="manual"),
    ]
    with HubServer(repos) as server:
        yield server


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("HF_TOKEN", "HF_API_KEY", "HF_HUB_CACHE", "HF_HOME", "LLAMA_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home" / ".cache"))
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as c:
        yield c


def manager(client: httpx.AsyncClient, hub: HubServer, tmp_path: Path, home: Path,
            **kw: object) -> DownloadManager:
    folders = ModelFolders(_Settings(folders=[str(tmp_path / "models")]), home=home)
    options: dict[str, object] = {"state_path": tmp_path / "data" / "downloads.json", "token": None,
                                  "retry_delay_s": 0.05}
    options.update(kw)
    return DownloadManager(client, folders=folders, endpoint=hub.url, **options)  # type: ignore[arg-type]


def content(path: Path | str) -> bytes:
    """A file's bytes (a helper, so the async tests' checks read plainly)."""
    return Path(path).read_bytes()


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else -1


async def test_download_reports_progress_and_verifies(client: httpx.AsyncClient, hub: HubServer,
                                                      tmp_path: Path, home: Path) -> None:
    hub.throttle_bps = 1_000_000
    dm = manager(client, hub, tmp_path, home)
    await dm.start()
    events: list[DownloadEvent] = []
    dm.subscribe(events.append)
    [job] = await dm.enqueue(REPO, ["Tiny-Q4_K_M.gguf"])
    done = await dm.wait(job.id)
    assert done.state == JobState.DONE and done.verified
    dest = tmp_path / "models" / "bartowski" / "Tiny-GGUF" / "Tiny-Q4_K_M.gguf"
    assert Path(done.dest) == dest and content(dest) == PAYLOAD
    assert size(done.part_path) < 0
    progress = [e.job for e in events if e.kind == "progress"]
    assert len(progress) >= 3  # several updates over ~0.4 s
    assert any(0 < p.done_bytes < len(PAYLOAD) and p.speed_bps > 0 and p.eta_s is not None
               for p in progress)
    assert hub.bytes_sent["Tiny-Q4_K_M.gguf"] == len(PAYLOAD)
    await dm.close()
    saved = json.loads(content(tmp_path / "data" / "downloads.json"))["jobs"][0]
    assert saved["state"] == "done" and saved["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()


async def test_pause_then_resume_asks_only_for_the_rest(client: httpx.AsyncClient, hub: HubServer,
                                                        tmp_path: Path, home: Path) -> None:
    hub.throttle_bps = 400_000
    dm = manager(client, hub, tmp_path, home)
    [job] = await dm.enqueue(REPO, ["Tiny-Q4_K_M.gguf"])
    await until(lambda: (dm.job(job.id).done_bytes or 0) > 100_000)  # type: ignore[union-attr]
    await dm.pause(job.id)
    paused = dm.job(job.id)
    assert paused is not None and paused.state == JobState.PAUSED
    kept = size(paused.part_path)
    assert 0 < kept < len(PAYLOAD) and paused.done_bytes == kept
    await asyncio.sleep(0.2)
    assert size(paused.part_path) == kept  # nothing more arrives while paused
    hub.throttle_bps = 0
    sent_before = hub.bytes_sent["Tiny-Q4_K_M.gguf"]
    await dm.resume(job.id)
    done = await dm.wait(job.id)
    assert done.state == JobState.DONE and content(done.dest) == PAYLOAD
    assert hub.bytes_sent["Tiny-Q4_K_M.gguf"] - sent_before == len(PAYLOAD) - kept  # a Range request
    await dm.close()


async def test_cancel_removes_the_part(client: httpx.AsyncClient, hub: HubServer, tmp_path: Path,
                                       home: Path) -> None:
    hub.throttle_bps = 300_000
    dm = manager(client, hub, tmp_path, home)
    events: list[DownloadEvent] = []
    dm.subscribe(events.append)
    [job] = await dm.enqueue(REPO, ["Tiny-Q4_K_M.gguf"])
    await until(lambda: size(job.part_path) > 0)
    await dm.cancel(job.id)
    assert dm.job(job.id) is None and size(job.part_path) < 0 and size(Path(job.dest)) < 0
    assert events[-1].kind == "removed"
    await dm.close()


async def test_dropped_connection_resumes_where_it_stopped(client: httpx.AsyncClient, hub: HubServer,
                                                           tmp_path: Path, home: Path) -> None:
    hub.drop_next(250_000)
    dm = manager(client, hub, tmp_path, home)
    [job] = await dm.enqueue(REPO, ["Tiny-Q4_K_M.gguf"])
    done = await dm.wait(job.id)
    assert done.state == JobState.DONE and content(done.dest) == PAYLOAD
    # 250 000 bytes, then the rest by range: nothing fetched twice.
    assert hub.bytes_sent["Tiny-Q4_K_M.gguf"] == len(PAYLOAD)
    await dm.close()


async def test_corrupt_file_fails_its_checksum_and_is_deleted(client: httpx.AsyncClient, hub: HubServer,
                                                              tmp_path: Path, home: Path) -> None:
    hub.corrupt.add("Tiny-Q8_0.gguf")
    dm = manager(client, hub, tmp_path, home)
    [job] = await dm.enqueue(REPO, ["Tiny-Q8_0.gguf"])
    failed = await dm.wait(job.id)
    assert failed.state == JobState.FAILED and failed.reason == "checksum"
    message = failed.message or ""
    assert "did not match the Hub's checksum" in message and "was deleted" in message
    assert size(failed.part_path) < 0 and size(Path(failed.dest)) < 0
    await dm.close()


async def test_split_parts_are_enqueued_together(client: httpx.AsyncClient, hub: HubServer, tmp_path: Path,
                                                 home: Path) -> None:
    dm = manager(client, hub, tmp_path, home, max_downloads=1)
    jobs = await dm.enqueue(REPO, ["Split-00002-of-00002.gguf"])
    assert [j.file for j in jobs] == ["Split-00001-of-00002.gguf", "Split-00002-of-00002.gguf"]
    assert jobs[0].group and jobs[0].group == jobs[1].group
    # One at a time (the limit): the second waits while the first runs.
    assert dm.job(jobs[1].id).state == JobState.QUEUED  # type: ignore[union-attr]
    for job, data in zip(jobs, PARTS, strict=True):
        assert (await dm.wait(job.id)).state == JobState.DONE
        assert content(job.dest) == data
    await dm.close()


async def test_nothing_is_downloaded_twice(client: httpx.AsyncClient, hub: HubServer, tmp_path: Path,
                                           home: Path) -> None:
    # An LM Studio library holds the Q8_0 already; the Hugging Face cache holds the Q4_K_M as
    # huggingface_hub keeps it where it may not make links (Windows without Developer Mode): the
    # file itself in the snapshot, found by repo, name and size.
    lmstudio = home / ".lmstudio" / "models" / "bartowski" / "Tiny-GGUF"
    lmstudio.mkdir(parents=True)
    (lmstudio / "Tiny-Q8_0.gguf").write_bytes(SMALL)
    snap = home / ".cache" / "huggingface" / "hub" / "models--bartowski--Tiny-GGUF" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "Tiny-Q4_K_M.gguf").write_bytes(PAYLOAD)
    dm = manager(client, hub, tmp_path, home)
    q8, q4 = await dm.enqueue(REPO, ["Tiny-Q8_0.gguf", "Tiny-Q4_K_M.gguf"])
    assert q8.state == JobState.PRESENT and q8.message == f"Already have it at {lmstudio / 'Tiny-Q8_0.gguf'}"
    assert q4.state == JobState.PRESENT and q4.message == f"Already have it at {snap / 'Tiny-Q4_K_M.gguf'}"
    assert hub.bytes_sent == {}
    # A second enqueue of a queued file returns the same job.
    hub.throttle_bps = 200_000
    [split1, _] = await dm.enqueue(REPO, ["Split-00001-of-00002.gguf"])
    [again, _] = await dm.enqueue(REPO, ["Split-00001-of-00002.gguf"])
    assert again.id == split1.id
    await dm.close()


@wine_gap(NO_SYMLINKS)
async def test_a_renamed_copy_is_known_by_its_sha256(client: httpx.AsyncClient, hub: HubServer,
                                                    tmp_path: Path, home: Path) -> None:
    """Another repo's file under another name in the Hugging Face cache, linked to its blob as
    huggingface_hub links them: the Hub's sha256 for the Q4_K_M names it, nothing is fetched."""
    snap = home / ".cache" / "huggingface" / "hub" / "models--someone--Copy-GGUF"
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    (snap / "blobs").mkdir(parents=True)
    (snap / "blobs" / sha).write_bytes(PAYLOAD)
    (snap / "snapshots" / "abc").mkdir(parents=True)
    (snap / "snapshots" / "abc" / "renamed.gguf").symlink_to(Path("..") / ".." / "blobs" / sha)
    dm = manager(client, hub, tmp_path, home)
    [q4] = await dm.enqueue(REPO, ["Tiny-Q4_K_M.gguf"])
    assert q4.state == JobState.PRESENT and "renamed.gguf" in (q4.message or "")
    assert hub.bytes_sent == {}
    await dm.close()


async def test_disk_space_is_checked_first(client: httpx.AsyncClient, hub: HubServer, tmp_path: Path,
                                           home: Path) -> None:
    dm = manager(client, hub, tmp_path, home)
    with pytest.raises(DownloadError) as caught:
        await dm.enqueue(REPO, ["Huge-F32.gguf"])
    assert caught.value.reason == "disk_space"
    assert str(tmp_path / "models") in caught.value.message and "missing" in caught.value.message
    assert dm.jobs == [] and hub.bytes_sent == {}
    await dm.close()


async def test_gated_repo_needs_the_token_from_the_keyring(client: httpx.AsyncClient, hub: HubServer,
                                                           tmp_path: Path, home: Path) -> None:
    from victor_gui.services.downloads import default_token

    dm = manager(client, hub, tmp_path, home, token=default_token)
    with use_backend(MemoryKeyring()):
        store = KeyringStore()
        set_secret_store(store)
        try:
            [job] = await dm.enqueue("meta/Gated-GGUF", ["gated.gguf"])
            failed = await dm.wait(job.id)
            assert failed.state == JobState.FAILED and failed.reason == "gated"
            assert "Settings → API keys" in (failed.message or "")
            store.set_key("huggingface", hub.token)
            await dm.resume(job.id)
            done = await dm.wait(job.id)
            assert done.state == JobState.DONE and content(done.dest) == SMALL
            assert hub.token.encode() not in content(tmp_path / "data" / "downloads.json")
        finally:
            set_secret_store(None)
    await dm.close()


async def test_restart_brings_the_job_back_paused_and_it_resumes(client: httpx.AsyncClient, hub: HubServer,
                                                                 tmp_path: Path, home: Path) -> None:
    hub.throttle_bps = 400_000
    first = manager(client, hub, tmp_path, home)
    await first.start()
    [job] = await first.enqueue(REPO, ["Tiny-Q4_K_M.gguf"])
    await until(lambda: (first.job(job.id).done_bytes or 0) > 100_000)  # type: ignore[union-attr]
    await first.close()  # the app quits mid-download
    kept = size(job.part_path)
    hub.throttle_bps = 0
    second = manager(client, hub, tmp_path, home)
    await second.start()
    back = second.job(job.id)
    assert back is not None and back.state == JobState.PAUSED and back.done_bytes == kept
    sent_before = hub.bytes_sent["Tiny-Q4_K_M.gguf"]
    await second.resume(job.id)
    done = await second.wait(job.id)
    assert done.state == JobState.DONE and content(done.dest) == PAYLOAD
    assert hub.bytes_sent["Tiny-Q4_K_M.gguf"] - sent_before == len(PAYLOAD) - kept
    await second.close()


async def test_hostile_paths_are_refused(client: httpx.AsyncClient, hub: HubServer, tmp_path: Path,
                                         home: Path) -> None:
    dm = manager(client, hub, tmp_path, home)
    for repo, file in ((REPO, "../../escape.gguf"), ("../x", "a.gguf"), (REPO, "/etc/passwd"),
                       (REPO, "C:evil.gguf"), (REPO, "a\\..\\..\\b.gguf")):
        with pytest.raises(DownloadError) as caught:
            await dm.enqueue(repo, [file])
        assert caught.value.reason == "bad_ref"
    await dm.close()


async def test_the_limit_follows_the_settings(client: httpx.AsyncClient, hub: HubServer, tmp_path: Path,
                                              home: Path) -> None:
    from victor_gui.services.settings_service import SettingsService

    settings = SettingsService(tmp_path / "settings.yaml")
    await settings.update(model_folders=ModelFolderSettings(folders=[str(tmp_path / "models")],
                                                            max_downloads=1))
    hub.throttle_bps = 100_000
    dm = DownloadManager(client, settings=settings, folders=ModelFolders(settings, home=home),
                         state_path=None, endpoint=hub.url, token=None)
    await dm.start()
    first, second = await dm.enqueue(REPO, ["Split-00001-of-00002.gguf"])
    await until(lambda: dm.job(first.id).state == JobState.DOWNLOADING)  # type: ignore[union-attr]
    assert dm.job(second.id).state == JobState.QUEUED  # type: ignore[union-attr]
    two = settings.settings.model_folders.model_copy(update={"max_downloads": 2})
    await settings.update(model_folders=two)
    await until(lambda: dm.job(second.id).state != JobState.QUEUED)  # type: ignore[union-attr]
    assert dm.job(first.id).state in (  # type: ignore[union-attr]
        JobState.DOWNLOADING, JobState.VERIFYING, JobState.DONE)
    hub.throttle_bps = 0
    await dm.close()


async def test_two_quick_enqueues_queue_one_job(client: httpx.AsyncClient, hub: HubServer, tmp_path: Path,
                                                home: Path) -> None:
    dm = manager(client, hub, tmp_path, home)
    other = tmp_path / "elsewhere"
    a, b = await asyncio.gather(dm.enqueue(REPO, ["Tiny-Q8_0.gguf"], folder=other),
                                dm.enqueue(REPO, ["Tiny-Q8_0.gguf"], folder=other))
    assert a[0].id == b[0].id and len(dm.jobs) == 1
    assert (await dm.wait(a[0].id)).state == JobState.DONE
    # The file now in a folder named for one download is found there too: not fetched again.
    [again] = await dm.enqueue(REPO, ["Tiny-Q8_0.gguf"], folder=other)
    assert again.state == JobState.PRESENT and again.dest == a[0].dest
    assert hub.bytes_sent["Tiny-Q8_0.gguf"] == len(SMALL)
    await dm.close()


async def test_a_part_left_by_an_earlier_run_is_hashed_and_continued(
        client: httpx.AsyncClient, hub: HubServer, tmp_path: Path, home: Path) -> None:
    # What a CLI download stopped with Ctrl+C leaves: a .part and no state file.
    part = tmp_path / "models" / REPO / "Tiny-Q4_K_M.gguf.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:123_456])
    dm = manager(client, hub, tmp_path, home, state_path=None)
    [job] = await dm.enqueue(REPO, ["Tiny-Q4_K_M.gguf"])
    done = await dm.wait(job.id)
    assert done.state == JobState.DONE and done.verified and content(done.dest) == PAYLOAD
    assert hub.bytes_sent["Tiny-Q4_K_M.gguf"] == len(PAYLOAD) - 123_456
    await dm.close()


async def test_a_folder_that_cannot_be_written_fails_with_a_sentence(
        client: httpx.AsyncClient, hub: HubServer, tmp_path: Path, home: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"a file where the models folder should be")
    dm = manager(client, hub, tmp_path, home)
    [job] = await dm.enqueue(REPO, ["Tiny-Q8_0.gguf"], folder=blocker)
    failed = await dm.wait(job.id)
    assert failed.state == JobState.FAILED and failed.reason == "disk"
    assert f"could not be written to {blocker / REPO}" in (failed.message or "")
    await dm.close()
