"""HTTP(S) downloads with resume (Range), a bounded number of tries with backoff, and one-line errors.

urllib is imported here only, so importing affordml stays fast.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from affordml.errors import ArtifactError

USER_AGENT = "affordml"
MIRROR_FIX = "or take artifacts from a folder made by `affordml bundle DIR` (`affordml init --mirror DIR`)"


@dataclass(frozen=True)
class Policy:
    timeout_s: float = 30.0
    tries: int = 4
    backoff_s: float = 1.0  # doubles after each failed try

    def pause(self, attempt: int) -> float:
        return self.backoff_s * (2**attempt)


class _Retry(Exception):
    def __init__(self, why: str, kind: str) -> None:
        super().__init__(why)
        self.why, self.kind = why, kind


def _fail(name: str, url: str, why: str, fix: str) -> ArtifactError:
    return ArtifactError(f"{name}: {url} {why}", fix)


def _final_error(name: str, url: str, last: _Retry, tries: int) -> ArtifactError:
    if last.kind == "timeout":
        return _fail(name, url, f"{last.why} ({tries} tries)", f"check the internet connection or proxy, {MIRROR_FIX}")
    if last.kind == "server":
        return _fail(
            name, url, f"{last.why} ({tries} tries)", f"the server has a problem: try again later, {MIRROR_FIX}"
        )
    return _fail(name, url, f"{last.why} ({tries} tries)", f"check the internet connection, DNS or proxy, {MIRROR_FIX}")


def _open(url: str, headers: dict[str, str], policy: Policy, name: str):
    """Open the URL; HTTP errors that another try will not fix raise ArtifactError, the others _Retry."""
    import http.client
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
    try:
        return urllib.request.urlopen(request, timeout=policy.timeout_s)  # noqa: S310 (URLs come from the lock)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416:
            raise _Retry("answered HTTP 416 to a resume request", "range") from None
        if exc.code >= 500 or exc.code == 429:
            raise _Retry(f"answered HTTP {exc.code} ({exc.reason})", "server") from None
        fix = "check the version lock's URL for this artifact (affordml/versions.yaml) " + MIRROR_FIX
        raise _fail(name, url, f"answered HTTP {exc.code} ({exc.reason})", fix) from None
    except TimeoutError:
        raise _Retry(f"gave no answer within {policy.timeout_s:g} s", "timeout") from None
    except urllib.error.URLError as exc:
        reason = exc.reason if not isinstance(exc.reason, TimeoutError) else None
        if reason is None:
            raise _Retry(f"gave no answer within {policy.timeout_s:g} s", "timeout") from None
        raise _Retry(f"could not be reached ({reason})", "network") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Retry(f"could not be reached ({exc})", "network") from None


def _total(response, offset: int) -> int | None:
    if response.status == 206:
        content_range = response.headers.get("Content-Range", "")
        size = content_range.rpartition("/")[2]
        return int(size) if size.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _copy_body(response, part: Path, offset: int, total: int | None, reporter, policy: Policy) -> int:
    """Append the body to `part` (from `offset`); return the bytes now in the file."""
    import http.client

    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if offset else os.O_TRUNC)
    fd = os.open(part, flags, 0o644)
    try:
        from affordml.safefile import check_own_file

        check_own_file(fd, part)  # never a second name (hard link) of a file elsewhere: O_TRUNC would empty it
    except BaseException:
        os.close(fd)
        raise
    written = offset
    try:
        with os.fdopen(fd, "ab" if offset else "wb") as handle:
            while True:
                try:
                    chunk = response.read(256 * 1024)
                except TimeoutError:
                    raise _Retry(f"stopped sending for {policy.timeout_s:g} s", "timeout") from None
                except (OSError, http.client.HTTPException) as exc:
                    raise _Retry(f"dropped the connection ({type(exc).__name__})", "network") from None
                if not chunk:
                    break
                handle.write(chunk)
                written += len(chunk)
                reporter.advance(len(chunk))
    finally:
        response.close()
    if total is not None and written < total:
        raise _Retry(f"closed the connection after {written} of {total} bytes", "network")
    return written


def download(
    url: str, part: Path, *, name: str, reporter, policy: Policy = Policy(), headers=None, sleep=time.sleep
) -> int:
    """Fetch `url` into `part`, resuming what is already there. Returns the size. Raises ArtifactError."""
    last: _Retry | None = None
    for attempt in range(policy.tries):
        if attempt:
            sleep(policy.pause(attempt - 1))
        offset = part.stat().st_size if part.exists() and not part.is_symlink() else 0
        try:
            extra = {"Range": f"bytes={offset}-"} if offset else {}
            response = _open(url, {**(headers or {}), **extra}, policy, name)
            if offset and response.status != 206:
                offset = 0  # the server ignored Range: start again from the first byte
            total = _total(response, offset)
            reporter.start(name, url, total, offset)
            try:
                return _copy_body(response, part, offset, total, reporter, policy)
            finally:
                reporter.finish()
        except _Retry as retry:
            last = retry
            if retry.kind == "range":
                part.unlink(missing_ok=True)
    raise _final_error(name, url, last, policy.tries)


def fetch_bytes(url: str, *, name: str, policy: Policy = Policy(), headers=None, sleep=time.sleep) -> bytes:
    """A small file (checksum file, chart index, OCI manifest or token) into memory, with the same tries."""
    last: _Retry | None = None
    for attempt in range(policy.tries):
        if attempt:
            sleep(policy.pause(attempt - 1))
        try:
            with _open(url, headers or {}, policy, name) as response:
                return response.read()
        except _Retry as retry:
            last = retry
        except OSError as exc:
            last = _Retry(f"dropped the connection ({type(exc).__name__})", "network")
    raise _final_error(name, url, last, policy.tries)
