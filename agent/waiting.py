"""Wait for a local HTTP server to answer: the model server's health check, the chat UI's own page."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until_answering(url: str, timeout_s: float, method: str = "HEAD",
                         accept: Callable[[int], bool] = lambda status: status < 500) -> None:
    """Return once ``url`` answers with a status ``accept`` takes; raise ``TimeoutError`` (saying what went
    wrong last) after ``timeout_s``. No proxy is asked: these servers are on this machine."""
    import httpx

    deadline = time.monotonic() + timeout_s
    problem = "no answer"
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        while True:
            try:
                status = client.request(method, url).status_code
                if accept(status):
                    return
                problem = f"status {status}"
            except httpx.HTTPError as err:
                problem = type(err).__name__
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout_s:.0f} s ({problem})")
            time.sleep(0.2)
