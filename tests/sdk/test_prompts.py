"""Fetching prompts with the SDK against a real server: labels and versions, the TTL cache with
stale-while-revalidate (single flight), the disk fallback when the server is down, ``fallback=``, errors, and
the async client."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from promptops_sdk import ApiError, AsyncPromptOps, PromptOps, TemplateError, UnavailableError

from tests.sdk.support import client, create_prompt
from tests.support.app import ADMIN_KEY
from tests.support.server_process import ServerProcess


def add_version(server: ServerProcess, name: str, template: str, labels: list[str] | None = None) -> None:
    server.call(
        "POST", f"/api/v1/prompts/{name}/versions", json={"template": template, "labels": labels or []}
    )


def wait_for(condition: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_get_prompt_by_label_version_and_latest(served: ServerProcess, po: PromptOps) -> None:
    created = create_prompt(
        served,
        name="sdk/greet",
        template="Hello {{ name }}",
        variables=[{"name": "name"}],
        modelConfig={"provider": "openai", "model": "gpt-4o-mini", "params": {"temperature": 0.2}},
        labels=["production"],
    )
    add_version(served, "sdk/greet", "Hi {{ name }}!")

    production = po.get_prompt("sdk/greet", label="production")
    assert production.version == 1 and production.version_id == created["version"]["id"]
    assert production.label == "production" and production.name == "sdk/greet"
    assert production.model_config == {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "params": {"temperature": 0.2},
    }
    assert production.render(name="Ada") == "Hello Ada"
    assert production.to_openai_messages(name="Ada") == [{"role": "user", "content": "Hello Ada"}]
    assert po.get_prompt("sdk/greet", version=2).render(name="Ada") == "Hi Ada!"
    assert po.get_prompt("sdk/greet").version == 2  # latest

    chat = po.get_prompt("support/reply", label="production")  # an example prompt of a fresh server
    messages = chat.to_openai_messages(product="Acme", customer_name="Dana", message="Export?")
    assert [m["role"] for m in messages] == ["system", "user"] and "Dana" in messages[1]["content"]

    with pytest.raises(ApiError) as missing:
        po.get_prompt("sdk/none", label="production")
    assert missing.value.status == 404 and missing.value.code == "prompt_not_found"
    with pytest.raises(ApiError) as no_label:
        po.get_prompt("sdk/greet", label="canary")
    assert no_label.value.code == "label_not_found"
    with pytest.raises(TemplateError) as problem:
        production.render()
    assert problem.value.code == "missing_variables" and problem.value.missing == ["name"]
    with PromptOps(served.url, "po_wrongkey_" + "B" * 40, cache_dir=False) as wrong:
        with pytest.raises(ApiError) as denied:
            wrong.get_prompt("sdk/greet")
        assert denied.value.status == 401


def test_cache_hits_never_wait_and_stale_hits_refresh_once_in_the_background(
    served: ServerProcess, tmp_path: Path
) -> None:
    create_prompt(served, name="sdk/swr", template="one", labels=["production"])
    with client(served, tmp_path, cache_ttl=0.3) as po:
        assert po.get_prompt("sdk/swr", label="production").render() == "one"
        requests = po.stats.http_requests
        for _ in range(100):
            po.get_prompt("sdk/swr", label="production")
        assert po.stats.http_requests == requests and po.stats.cache_hits == 100  # fresh hits: no network

        add_version(served, "sdk/swr", "two", ["production"])
        time.sleep(0.35)  # the entry is now stale
        # N concurrent stale hits: every one answers the cached copy at once, one refresh request is made
        answers: list[str] = []
        barrier = threading.Barrier(16)

        def hit() -> None:
            barrier.wait()
            answers.append(str(po.get_prompt("sdk/swr", label="production").render()))

        threads = [threading.Thread(target=hit) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == ["one"] * 16
        wait_for(lambda: po.stats.refreshes == 1)
        assert po.stats.http_requests == requests + 1 and po.stats.stale_served == 16
        assert po.get_prompt("sdk/swr", label="production").render() == "two"


def test_concurrent_misses_share_one_fetch(served: ServerProcess, po: PromptOps) -> None:
    create_prompt(served, name="sdk/miss", template="x")
    barrier = threading.Barrier(8)
    seen: list[str | None] = []

    def miss() -> None:
        barrier.wait()
        seen.append(po.get_prompt("sdk/miss").version_id)

    threads = [threading.Thread(target=miss) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1 and po.stats.http_requests == 1


def test_a_restarted_app_gets_its_prompts_from_disk_while_the_server_is_down(
    served: ServerProcess, tmp_path: Path
) -> None:
    create_prompt(
        served,
        name="shared/tone",
        template="Be kind, {{ agent }}.",
        variables=[{"name": "agent", "default": "Sam"}],
        labels=["production"],
    )
    create_prompt(
        served,
        name="sdk/answer",
        template='{% include "shared/tone@production" %} Q: {{ q }}',
        variables=[{"name": "q"}],
        labels=["production"],
    )
    with client(served, tmp_path) as po:
        first = po.get_prompt("sdk/answer", label="production")
        assert first.render(q="why?") == "Be kind, Sam. Q: why?"

    served.kill()
    with client(served, tmp_path, timeout=2.0) as restarted:  # a new process: empty memory cache
        from_disk = restarted.get_prompt("sdk/answer", label="production")
        assert from_disk.source == "disk" and from_disk.version_id == first.version_id
        assert from_disk.render(q="why?") == "Be kind, Sam. Q: why?"  # includes were saved with it
        assert restarted.stats.disk_fallbacks == 1
        with pytest.raises(UnavailableError):
            restarted.get_prompt("sdk/never-fetched")
        # back up: the stale disk copy is refreshed in the background on the next call
        served.start()
        restarted.get_prompt("sdk/answer", label="production")
        wait_for(lambda: restarted.stats.refreshes == 1)
        assert restarted.get_prompt("sdk/answer", label="production").source == "server"

    with client(served, tmp_path, cache_dir=False) as no_disk:
        served.kill()
        with pytest.raises(UnavailableError):
            no_disk.get_prompt("sdk/answer", label="production")


def test_fallback_on_first_start_when_the_server_is_unreachable(tmp_path: Path) -> None:
    with PromptOps("http://127.0.0.1:9", ADMIN_KEY, cache_dir=tmp_path / "c", timeout=1.0) as po:
        text = po.get_prompt("sdk/first", label="production", fallback="Hello {{ name }}")
        assert text.source == "fallback" and text.is_fallback and text.render(name="Ada") == "Hello Ada"
        chat = po.get_prompt("sdk/chat", fallback=[{"role": "system", "content": "Hi {{ who }}"}])
        assert chat.to_openai_messages(who="you") == [{"role": "system", "content": "Hi you"}]
        with pytest.raises(TemplateError) as missing:
            text.render()
        assert missing.value.code == "missing_variables"
        with pytest.raises(UnavailableError):
            po.get_prompt("sdk/first", label="production")  # a fallback is not cached
        assert po.stats.fallbacks == 2


def test_fallback_is_not_used_when_the_server_answers(served: ServerProcess, po: PromptOps) -> None:
    with pytest.raises(ApiError):
        po.get_prompt("sdk/absent", fallback="never used")


def test_async_client_same_surface(served: ServerProcess, tmp_path: Path) -> None:
    create_prompt(
        served, name="sdk/async", template="A {{ x }}", variables=[{"name": "x"}], labels=["production"]
    )

    async def main() -> None:
        async with AsyncPromptOps(served.url, ADMIN_KEY, cache_dir=tmp_path / "ac", cache_ttl=0.2) as po:
            prompts = await asyncio.gather(
                *(po.get_prompt("sdk/async", label="production") for _ in range(10))
            )
            assert {p.version_id for p in prompts} == {prompts[0].version_id}
            assert po.stats.http_requests == 1  # concurrent misses: one fetch
            assert prompts[0].render(x="1") == "A 1"
            await asyncio.sleep(0.25)
            stale = await asyncio.gather(*(po.get_prompt("sdk/async", label="production") for _ in range(10)))
            assert all(p.version_id == prompts[0].version_id for p in stale)
            for _ in range(200):
                if po.stats.refreshes == 1:
                    break
                await asyncio.sleep(0.02)
            assert po.stats.refreshes == 1 and po.stats.http_requests == 2
            with pytest.raises(ApiError):
                await po.get_prompt("sdk/none")
            async with po.trace(prompt=prompts[0], input="A 1") as t:
                t.record(output="ok", model="m")
            assert await po.flush(10)
            assert po.stats.sent == 1

    asyncio.run(main())
