"""Sending a webhook without being turned against our own network (SSRF).

The host is resolved ONCE; every address it resolves to is checked; the request goes to one of those
checked addresses (never to a name the HTTP client would resolve again, which a rebinding DNS server
could answer differently). For https the TLS handshake still uses the host name: SNI and the
certificate check name the host, not the address.

In production (``WEBHOOK_ALLOW_PRIVATE_URLS`` off) every non-global address is refused, and so is any
port outside ``WEBHOOK_ALLOWED_PORTS``; development and tests allow loopback and private receivers.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError, SSLError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Python's ``is_global`` alone lets some of these through (NAT64, 6to4, multicast...): each is named here.
_V4_REFUSED = {
    "0.0.0.0/8": "this network",
    "10.0.0.0/8": "private",
    "100.64.0.0/10": "carrier-grade NAT",
    "127.0.0.0/8": "loopback",
    "169.254.0.0/16": "link-local",
    "172.16.0.0/12": "private",
    "192.0.0.0/24": "IETF protocol assignments",
    "192.0.2.0/24": "documentation",
    "192.88.99.0/24": "6to4 relay",
    "192.168.0.0/16": "private",
    "198.18.0.0/15": "benchmarking",
    "198.51.100.0/24": "documentation",
    "203.0.113.0/24": "documentation",
    "224.0.0.0/4": "multicast",
    "240.0.0.0/4": "reserved",  # 255.255.255.255, the broadcast address, included
}
_V6_REFUSED = {
    "::/128": "unspecified",
    "::1/128": "loopback",
    "64:ff9b::/96": "NAT64",
    "64:ff9b:1::/48": "NAT64 (local use)",
    "100::/64": "discard-only",
    "2001::/23": "IETF protocol assignments (Teredo, benchmarking, ORCHID)",
    "2001:db8::/32": "documentation",
    "2002::/16": "6to4",
    "3fff::/20": "documentation",
    "5f00::/16": "segment routing",
    "fc00::/7": "unique local",
    "fe80::/10": "link-local",
    "fec0::/10": "site-local",
    "ff00::/8": "multicast",
}
V4_REFUSED = [(ipaddress.ip_network(net), why) for net, why in _V4_REFUSED.items()]
V6_REFUSED = [(ipaddress.ip_network(net), why) for net, why in _V6_REFUSED.items()]
_V4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")

# Of a receiver's answer, this much is read (the log keeps 500 characters of it).
RESPONSE_READ_BYTES = 4096
# A send tries at most this many of the checked addresses, so it ends well within the delivery's lease.
MAX_ADDRESSES_TRIED = 3


class Refused(Exception):
    """A URL or an address webhooks are not sent to; the message says why."""


def address_problem(address: IPAddress) -> str | None:
    """Why ``address`` is not a public Internet address, or None."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _V4_MAPPED or (address in _V4_COMPATIBLE and int(address) > 1):
            # ::ffff:a.b.c.d and the deprecated ::a.b.c.d reach the IPv4 address they embed.
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            problem = address_problem(embedded)
            return f"embeds {embedded}, {problem}" if problem else None
        refused = V6_REFUSED
    else:
        refused = V4_REFUSED
    for network, why in refused:
        if address in network:
            return why
    if not address.is_global or address.is_multicast or address.is_reserved:
        return "not a global address"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order (tests replace this with a scripted one)."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(info[4][0] for info in infos))


def allowed_ports() -> set[int]:
    return {int(port) for port in settings.WEBHOOK_ALLOWED_PORTS}


@dataclass(frozen=True)
class Target:
    """Where one request goes: the URL's parts and the checked addresses to connect to."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def _parse(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise Refused("The URL must be an absolute http(s) URL.")
    if parts.username is not None or parts.password is not None:
        raise Refused("The URL must not carry a user name or password: the signature authenticates us.")
    try:
        port = parts.port
    except ValueError:  # out of range: urlsplit raises on access, the URLField regex lets it through
        raise Refused("The URL's port is not valid.") from None
    if settings.PRODUCTION and parts.scheme != "https":
        raise Refused("Webhook URLs must use https.")
    port = port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port, path


def target_resolve(url: str) -> Target:
    """The URL resolved once and checked; raises Refused. What a request is then sent to."""
    scheme, host, port, path = _parse(url)
    try:
        addresses = resolve(host, port)
    except (socket.gaierror, UnicodeError):
        raise Refused(f"The host {host} does not resolve.") from None
    if not addresses:
        raise Refused(f"The host {host} does not resolve.")
    if not settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])  # a scoped fe80::1%eth0 is link-local anyway
            problem = address_problem(address)
            if problem:
                raise Refused(f"The host {host} resolves to a non-public address ({address}: {problem}).")
        if port not in allowed_ports():
            ports = ", ".join(str(p) for p in sorted(allowed_ports()))
            raise Refused(f"Webhooks are sent to ports {ports} only, not {port}.")
    return Target(scheme=scheme, host=host, port=port, path=path, addresses=tuple(addresses))


def url_problem(url: str) -> str | None:
    """Why a webhook URL is refused, or None; with private URLs allowed (development), only its form counts."""
    try:
        if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
            _parse(url)
        else:
            target_resolve(url)
    except Refused as refused:
        return str(refused)
    return None


@dataclass
class Result:
    """What one attempt came to: the address connected to, the answer or the error, how long it took."""

    address: str = ""
    status_code: int | None = None
    headers: dict[str, str] | None = None
    body_excerpt: str = ""
    latency_ms: int | None = None
    error: str = ""


def _pool(target: Target, address: str, timeout: float) -> urllib3.HTTPConnectionPool:
    options = {
        "host": address,
        "port": target.port,
        "timeout": urllib3.Timeout(connect=timeout, read=timeout),
        "retries": False,
        "maxsize": 1,
    }
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            **options,
            cert_reqs="CERT_REQUIRED",
            ca_certs=settings.WEBHOOK_CA_BUNDLE or certifi.where(),
            server_hostname=target.host,  # SNI names the host...
            assert_hostname=target.host,  # ...and so must the certificate, though we dialled an address
        )
    return urllib3.HTTPConnectionPool(**options)


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> Result:
    """POST ``body`` to ``url`` at an address checked here; no redirect followed, no retry. Never raises."""
    try:
        target = target_resolve(url)
    except Refused as refused:
        return Result(error=str(refused))
    result = Result()
    # The next checked address only when this one refused the connection; three at most (each may time out).
    for address in target.addresses[:MAX_ADDRESSES_TRIED]:
        result = Result(address=address)
        pool = _pool(target, address, timeout)
        started = time.monotonic()
        try:
            response = pool.urlopen(
                "POST",
                target.path,
                body=body,
                headers={**headers, "Host": target.host_header},
                redirect=False,
                retries=False,
                assert_same_host=False,
                preload_content=False,
            )
            try:
                result.status_code = response.status
                result.headers = {name.lower(): value for name, value in response.headers.items()}
                result.latency_ms = round((time.monotonic() - started) * 1000)
                try:
                    excerpt = response.read(RESPONSE_READ_BYTES, decode_content=True)
                except (HTTPError, OSError):  # a body cut short or badly encoded: the status still counts
                    excerpt = b""
                result.body_excerpt = excerpt.decode("utf-8", errors="replace")[:500]
            finally:
                response.release_conn()
            return result
        except (NewConnectionError, ConnectTimeoutError) as exc:
            result.error = f"ConnectionError: could not connect to {address} port {target.port} ({_reason(exc)})"
        except SSLError as exc:
            result.error = f"TLSError: {_reason(exc)}"
            break
        except ReadTimeoutError:
            result.error = f"Timeout: no answer within {timeout:g} s"
            break
        except (HTTPError, OSError) as exc:
            result.error = f"{type(exc).__name__}: {_reason(exc)}"
            break
        finally:
            pool.close()
            if result.latency_ms is None:
                result.latency_ms = round((time.monotonic() - started) * 1000)
    result.error = result.error[:300]
    return result


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", None) or exc)[:200]
