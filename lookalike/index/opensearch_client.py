"""The one way we talk to OpenSearch: the client (every node of LOOKALIKE_OPENSEARCH_URL, basic auth
or SigV4, orjson bodies) and the one translation of its failures into IndexUnavailable, applied to
every public method of a class that uses it (`every_call_translated`). The index backend and the
review store both use it; credentials never reach a log line or an error.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from opensearchpy import JSONSerializer, OpenSearch, Urllib3AWSV4SignerAuth
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import NotFoundError, SSLError, TransportError

from lookalike.errors import IndexUnavailable, SettingsError
from lookalike.settings import Settings


class VectorJSON(JSONSerializer):
    """Request and response bodies through orjson: a float32 vector is written as the shortest text
    that reads back as the same float32 (~half of Python's float repr), and about ten times faster."""

    def dumps(self, data: Any) -> str:
        if isinstance(data, str | bytes):
            return data if isinstance(data, str) else data.decode()
        return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY, default=self.default).decode()

    def loads(self, s: str) -> Any:
        return orjson.loads(s)


def connect(settings: Settings) -> OpenSearch:
    """A client for every node named in LOOKALIKE_OPENSEARCH_URL: a dead node's requests go to another."""
    return OpenSearch(
        hosts=settings.opensearch_hosts,
        http_auth=authentication(settings),
        use_ssl=str(settings.opensearch_url).startswith("https"),
        verify_certs=settings.opensearch_verify,
        ca_certs=settings.opensearch_ca_file,
        timeout=settings.opensearch_timeout,
        max_retries=3,
        retry_on_timeout=True,
        serializer=VectorJSON(),
    )


def authentication(settings: Settings) -> Any:
    """What signs or authenticates each request: (user, password) for basic auth, opensearch-py's own
    SigV4 signer for Amazon OpenSearch Service (credentials as botocore finds them: environment,
    profile, instance role), or None."""
    if settings.opensearch_auth == "sigv4":
        try:
            import botocore.session
        except ImportError as exc:  # pragma: no cover - botocore is a dependency
            raise SettingsError("LOOKALIKE_OPENSEARCH_AUTH=sigv4 needs botocore (pip install botocore)") from exc
        credentials = botocore.session.get_session().get_credentials()
        if credentials is None:
            raise SettingsError("LOOKALIKE_OPENSEARCH_AUTH=sigv4 found no AWS credentials (AWS_ACCESS_KEY_ID and "
                                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role)")  # fmt: skip
        return Urllib3AWSV4SignerAuth(credentials, settings.opensearch_region, settings.opensearch_service)
    if settings.opensearch_user:
        return (settings.opensearch_user, settings.opensearch_password)
    return None


def unavailable(exc: Exception, settings: Settings) -> IndexUnavailable | None:
    """The one translation of OpenSearch's failures: IndexUnavailable, naming the index and what is
    wrong, for a failure that means it cannot answer now (unreachable, timed out, overloaded, a
    server error, its index gone); None for any other (a bug of ours: it stays a 500)."""
    where = f"index {settings.index or settings.alias}"
    url = shown_url(settings.opensearch_url)
    who = repr(settings.opensearch_user) if settings.opensearch_user else "no user"
    if settings.opensearch_auth == "sigv4":
        who = f"the AWS credentials (SigV4, region {settings.opensearch_region}, service {settings.opensearch_service})"
    if isinstance(exc, SSLError) or (isinstance(exc, OSConnectionError) and "CERTIFICATE" in str(exc.info)):
        return IndexUnavailable(f"OpenSearch's TLS certificate at {url} is not trusted ({where}): "
                                f"{_certificate_problem(exc)}; give the CA that signed it with "
                                "LOOKALIKE_OPENSEARCH_CA_FILE")  # fmt: skip
    if isinstance(exc, OSConnectionError):  # refused, reset, timed out (ConnectionTimeout)
        kind = "timed out" if "timeout" in type(exc).__name__.lower() else "unreachable"
        return IndexUnavailable(f"OpenSearch {kind} at {url} ({where}): {exc.error}")
    if not isinstance(exc, TransportError):
        return None
    status = exc.status_code if isinstance(exc.status_code, int) else 0
    if isinstance(exc, NotFoundError) and exc.error == "index_not_found_exception":
        return IndexUnavailable(f"OpenSearch has no {where} (deleted, or the alias points nowhere)")
    if status == 401:
        return IndexUnavailable(f"OpenSearch refused authentication as {who} at {url} ({where}): "
                                "check LOOKALIKE_OPENSEARCH_USER and LOOKALIKE_OPENSEARCH_PASSWORD")  # fmt: skip
    if status == 403 and settings.opensearch_auth == "sigv4":
        return IndexUnavailable(f"OpenSearch at {url} refused the request signed with {who} "
                                f"({where}): {_reason(exc)}; check the credentials, the region and the domain's "
                                "access policy")  # fmt: skip
    if status == 403:
        reason = _reason(exc)
        missing = re.search(r"no permissions for \[([^\]]*)\]", reason)
        lacks = f"permission {missing.group(1)}" if missing else "a permission"
        return IndexUnavailable(f"OpenSearch user {who} lacks {lacks} ({where}): {reason}")
    if status == 429 or status >= 500 or status == 0:
        return IndexUnavailable(f"OpenSearch answered {exc.status_code} {exc.error} ({where})")
    return None


def shown_url(url: str | None) -> str:
    """The URL(s) as errors show them: a password written into one (https://user:secret@host) is
    masked."""
    return re.sub(r"//([^/:@]+):[^/@]*@", r"//\1:***@", url or "")


def _reason(exc: TransportError) -> str:
    """OpenSearch's own words for a refusal (its error's `reason`), else the error's name."""
    info = exc.info if isinstance(exc.info, dict) else {}
    error = info.get("error") or info.get("message") or info.get("Message")  # AWS answers {"message": ...}
    if isinstance(error, dict):
        return str(error.get("reason") or error.get("type") or exc.error)
    return str(error or exc.error)


def _certificate_problem(exc: OSConnectionError) -> str:
    """The verification failure (e.g. 'self-signed certificate in certificate chain'), else the error."""
    text = str(exc.info or exc.error)
    found = re.search(r"certificate verify failed: ([^(\]\)]+)", text)
    return found.group(1).strip() if found else text[:300]


def translated(method: Callable) -> Callable:
    """Run a method of an object with `settings` (or iterate a generator method) with OpenSearch's
    failures translated."""

    def translate(self: Any, exc: Exception) -> Exception:
        return unavailable(exc, self.settings) or exc

    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def iterate(self: Any, *args: Any, **kwargs: Any) -> Iterator:
            try:
                yield from method(self, *args, **kwargs)
            except (OSConnectionError, TransportError) as exc:
                raise translate(self, exc) from exc

        return iterate

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (OSConnectionError, TransportError) as exc:
            raise translate(self, exc) from exc

    return call


def every_call_translated(cls: type) -> type:
    """Wrap each public method of `cls` (and __init__) with `translated`: no route or command can
    forget to, and a new method is covered when it is written."""
    for name, member in list(vars(cls).items()):
        if inspect.isfunction(member) and (not name.startswith("_") or name == "__init__"):
            setattr(cls, name, translated(member))
    return cls
