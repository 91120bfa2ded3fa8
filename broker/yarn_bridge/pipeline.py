"""Pipelined HTTP/1.1 for a batch of small idempotent POSTs to one RM: a few keep-alive connections, each with
a window of requests in flight, answers read back in order.

Why not httpx for this one path: on the 2-core machine httpx costs about 0.6 ms of client CPU per request even
against an in-memory transport (URL parsing, the cookie jar, request and response models), so 5,000 node pushes
spend 3 s or more in the client alone. Written straight to a socket and parsed by ``httptools`` (llhttp, the
parser uvicorn uses), the same 5,000 requests cost a few hundred milliseconds end to end. Everything else the
bridge sends still goes through httpx.

Why pipelining is safe for node pushes: HTTP/1.1 allows pipelining requests that may be repeated (RFC 9112
section 9.3.2); a node-resource POST sets an absolute value, so repeating it has the same effect as sending it
once. Answers come back in request order on each connection. Writes that must not be repeated (scheduler-conf)
are never sent this way.

Scope: one origin, POST with a JSON body, answers read whole (``Content-Length`` or chunked, as llhttp parses
them). No redirects, retries or cookies: the caller (``RMClient.post_batch``) maps every answer exactly as its
httpx path does and sends again, through that path, anything that is not a final answer.

Failures: a connection that cannot be opened, is reset or closed early, sends a malformed answer or stays silent
for ``timeout_s`` is closed and its worker stops; each request on it that got no answer is reported as
``NoAnswer``. Requests not yet taken from the shared queue are carried by the other connections; whatever is
left when every connection has failed is reported as ``NoAnswer`` too. A connection the RM ends cleanly
(``Connection: close`` on an answer) is replaced by a new one, and the requests it sent after that answer,
which the RM did not read, are sent again on it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

_READ_SIZE = 65536


@dataclass(frozen=True)
class Answer:
    """One answer: status, headers (names lower-cased) and the whole body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (lower case), if any."""
        return next((value for key, value in self.headers if key == name), None)


@dataclass(frozen=True)
class NoAnswer:
    """A request that got no answer, and why (``ConnectError: ...``, ``ReadTimeout``, ...)."""

    reason: str


@dataclass(frozen=True)
class Post:
    """One request of a batch: the target (path and query, already encoded) and the JSON body."""

    target: str
    body: bytes


class _Answers:
    """``httptools`` callbacks collecting the answers of one connection, in order."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.answers: list[Answer] = []
        self.keep_alive = True
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.answers.append(Answer(self.parser.get_status_code(), tuple(self._headers), b"".join(self._body)))
        self.keep_alive = self.parser.should_keep_alive()
        self._headers, self._body = [], []


class _ConnectionFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def post_pipelined(
    base: str,
    posts: Sequence[Post],
    headers: Mapping[str, str],
    *,
    connections: int,
    window: int,
    timeout_s: float,
) -> list[Answer | NoAnswer]:
    """Send every POST to ``base`` (``http(s)://host:port``) over at most ``connections`` connections with at most
    ``window`` requests in flight on each; the answer (or why there is none) per request, in the given order."""
    url = urlsplit(base)
    tls = ssl.create_default_context() if url.scheme == "https" else None
    port = url.port or (443 if tls else 80)
    fields = {"Host": url.netloc, **headers}
    if any("\r" in f or "\n" in f for f in (*fields, *fields.values())):
        raise ValueError("a header name or value contains a line break")
    head = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    results: list[Answer | NoAnswer | None] = [None] * len(posts)
    queue = deque(range(len(posts)))
    failures: list[str] = []

    def request(post: Post) -> bytes:
        return (
            f"POST {post.target} HTTP/1.1\r\n{head}Content-Length: {len(post.body)}\r\n\r\n".encode("latin-1")
            + post.body
        )

    async def connection() -> bool:
        """Carry requests from the queue over one connection; False when it failed, True when the RM ended it
        cleanly (``Connection: close``) or the queue is empty."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(url.hostname, port, ssl=tls), timeout_s
            )
        except (OSError, TimeoutError) as exc:
            failures.append(f"ConnectError: {str(exc) or type(exc).__name__}")
            return False
        answers = _Answers()
        try:
            while queue and answers.keep_alive:
                batch = [queue.popleft() for _ in range(min(window, len(queue)))]
                done = len(answers.answers)
                try:
                    writer.write(b"".join(request(posts[i]) for i in batch))
                    await _drain(writer)
                    await _read(reader, answers, done + len(batch), timeout_s)
                except _ConnectionFailed as exc:
                    got = answers.answers[done:]
                    for i, answer in zip(batch, got, strict=False):
                        results[i] = answer
                    unanswered = batch[len(got) :]
                    if not answers.keep_alive:  # the RM announced the close: it did not read the rest
                        queue.extendleft(reversed(unanswered))
                        return True
                    failures.append(exc.reason)
                    for i in unanswered:
                        results[i] = NoAnswer(exc.reason)
                    return False
                for i, answer in zip(batch, answers.answers[done:], strict=True):
                    results[i] = answer
            return True
        finally:
            writer.close()

    async def worker() -> None:
        while queue and await connection():
            pass

    await asyncio.gather(*(worker() for _ in range(max(1, min(connections, len(posts))))))
    leftover = NoAnswer(failures[-1] if failures else "no connection")
    return [leftover if r is None else r for r in results]


async def _drain(writer: asyncio.StreamWriter) -> None:
    try:
        await writer.drain()
    except OSError as exc:
        raise _ConnectionFailed(f"WriteError: {exc}") from None


async def _read(reader: asyncio.StreamReader, answers: _Answers, until: int, timeout_s: float) -> None:
    """Feed the parser until it holds ``until`` answers; ``_ConnectionFailed`` when the connection cannot."""
    while len(answers.answers) < until:
        try:
            data = await asyncio.wait_for(reader.read(_READ_SIZE), timeout_s)
        except TimeoutError:
            raise _ConnectionFailed("ReadTimeout") from None
        except OSError as exc:
            raise _ConnectionFailed(f"ReadError: {exc}") from None
        if not data:
            raise _ConnectionFailed("RemoteProtocolError: connection closed before every answer")
        try:
            answers.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise _ConnectionFailed(f"RemoteProtocolError: malformed answer ({exc})") from None


__all__ = ["Answer", "NoAnswer", "Post", "post_pipelined"]
