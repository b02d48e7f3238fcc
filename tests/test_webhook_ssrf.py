"""SSRF (issue 11): every non-global address and every port outside the list refused in production, the host
resolved once and the request sent to the address that was checked, TLS still checked against the host name.

The resolver is ``alerts.transport.resolve``; tests replace it with a scripted one (a DNS server answering
what the test says), so a rebinding name can be played without a real DNS server. Receivers are real.
"""

from __future__ import annotations

import datetime
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.exceptions import ValidationError
from standardwebhooks import Webhook

from alerts import transport
from alerts.models import WebhookDelivery
from alerts.services import event_publish, url_problem, webhook_deliver, webhook_endpoint_create
from riskoffice.audit import Actor

Status = WebhookDelivery.Status
HOST = "hooks.partner.test"  # .test never resolves for real: only the scripted resolver knows it


class ScriptedResolver:
    """Answers each lookup of a name with the next of its scripted answers (the last one repeats)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.calls: list[str] = []

    def script(self, host: str, *answers: list[str]) -> None:
        self.answers[host] = list(answers)

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answers = self.answers.get(host)
        if answers is None:
            return [host]  # an address literal resolves to itself
        return answers.pop(0) if len(answers) > 1 else answers[0]


@pytest.fixture
def dns(monkeypatch) -> ScriptedResolver:
    resolver = ScriptedResolver()
    monkeypatch.setattr(transport, "resolve", resolver)
    return resolver


@pytest.fixture
def production(settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    settings.PRODUCTION = True


@pytest.fixture
def development(settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.PRODUCTION = False


def register(partner_client, url: str):
    return webhook_endpoint_create(
        partner=partner_client.partner, url=url, event_types=[], actor=Actor(client=partner_client.api_client)
    )


def one_delivery(partner_client) -> WebhookDelivery:
    (delivery,) = event_publish(partner=partner_client.partner, event_type="score.completed", payload={"n": 1})
    return delivery


# --- every non-global address is refused -----------------------------------------------------------------

REFUSED = [
    "0.0.0.0",  # noqa: S104 (an address refused, not one bound to)
    "0.1.2.3",
    "10.1.2.3",
    "100.64.0.1",
    "100.127.255.254",
    "127.0.0.1",
    "127.8.8.8",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.254",
    "192.0.0.8",
    "192.0.2.10",
    "192.88.99.1",
    "192.168.1.10",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "64:ff9b::7f00:1",
    "64:ff9b::808:808",
    "64:ff9b:1::a00:1",
    "100::1",
    "2001::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001:2::1",
    "2001:db8::1",
    "2002:7f00:1::1",
    "2002:808:808::1",
    "3fff::1",
    "fc00::1",
    "fd12:3456:789a::1",
    "fe80::1",
    "fec0::1",
    "ff02::1",
    "ff0e::1",
]
ACCEPTED = ["93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4007:80e::200e", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_in_production_a_name_resolving_to_a_non_global_address_is_refused(address: str, dns, production) -> None:
    dns.script(HOST, [address])

    problem = url_problem(f"https://{HOST}/hooks")

    assert problem is not None and "non-public address" in problem


@pytest.mark.parametrize("address", REFUSED)
def test_in_production_a_non_global_address_literal_is_refused(address: str, production) -> None:
    host = f"[{address}]" if ":" in address else address

    assert "non-public address" in url_problem(f"https://{host}/hooks")


@pytest.mark.parametrize("address", ACCEPTED)
def test_in_production_a_public_address_is_accepted(address: str, dns, production) -> None:
    dns.script(HOST, [address])

    assert url_problem(f"https://{HOST}/hooks") is None


def test_every_address_a_name_resolves_to_is_checked(dns, production) -> None:
    dns.script(HOST, ["93.184.215.14", "10.0.0.7"])

    assert "10.0.0.7" in url_problem(f"https://{HOST}/hooks")


def test_a_name_that_does_not_resolve_is_refused(production) -> None:
    assert url_problem("https://no-such-host.invalid/hooks") == "The host no-such-host.invalid does not resolve."


def test_a_url_carrying_credentials_is_refused(dns, production) -> None:
    dns.script(HOST, ["93.184.215.14"])

    assert "user name or password" in url_problem(f"https://user:secret@{HOST}/hooks")


# --- ports --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", [443, 8443])
def test_in_production_the_allowed_ports_are_accepted(port: int, dns, production) -> None:
    dns.script(HOST, ["93.184.215.14"])

    assert url_problem(f"https://{HOST}:{port}/hooks") is None


@pytest.mark.parametrize("port", [22, 25, 80, 6379, 8080, 9200])
def test_in_production_any_other_port_is_refused(port: int, dns, production) -> None:
    dns.script(HOST, ["93.184.215.14"])

    assert url_problem(f"https://{HOST}:{port}/hooks") == f"Webhooks are sent to ports 443, 8443 only, not {port}."


def test_the_allowed_ports_are_a_setting(dns, production, settings) -> None:
    settings.WEBHOOK_ALLOWED_PORTS = [9443]
    dns.script(HOST, ["93.184.215.14"])

    assert url_problem(f"https://{HOST}:9443/hooks") is None
    assert url_problem(f"https://{HOST}/hooks") is not None


def test_in_development_loopback_and_any_port_are_allowed(development) -> None:
    assert url_problem("http://127.0.0.1:8000/hooks") is None


# --- at registration and again at send time ------------------------------------------------------------


def test_registering_a_name_that_resolves_to_a_private_address_is_refused_on_url(dns, production, marketplace) -> None:
    dns.script(HOST, ["192.168.0.10"])

    with pytest.raises(ValidationError) as error:
        register(marketplace, f"https://{HOST}/hooks")

    assert "non-public" in error.value.message_dict["url"][0]


def test_a_rebinding_name_public_at_registration_and_loopback_at_send_is_refused_at_send(
    dns, production, marketplace, webhook_receiver
) -> None:
    dns.script(HOST, ["93.184.215.14"], ["127.0.0.1"])
    register(marketplace, f"https://{HOST}/hooks")
    delivery = one_delivery(marketplace)

    assert webhook_deliver(delivery_id=delivery.pk) == Status.PENDING

    delivery.refresh_from_db()
    assert webhook_receiver.requests == []
    assert "non-public address (127.0.0.1" in delivery.last_error
    (attempt,) = delivery.attempt_log.all()
    assert attempt.address == "" and attempt.status_code is None and "non-public" in attempt.error


def test_the_request_goes_to_the_address_checked_even_if_the_name_now_resolves_elsewhere(
    dns, development, marketplace, webhook_receiver
) -> None:
    port = webhook_receiver.url.split(":")[2].split("/")[0]
    # First answer: the receiver; any later lookup would answer an address where nothing listens.
    dns.script(HOST, ["127.0.0.1"], ["127.0.0.2"])
    _, secret = register(marketplace, f"http://{HOST}:{port}/hooks")
    delivery = one_delivery(marketplace)

    assert webhook_deliver(delivery_id=delivery.pk) == Status.DELIVERED

    assert dns.calls == [HOST]  # resolved once, for the check; the connection reused that answer
    (request,) = webhook_receiver.requests
    assert request["headers"]["host"] == f"{HOST}:{port}"
    Webhook(secret).verify(request["body"], request["headers"])
    assert delivery.attempt_log.get().address == "127.0.0.1"


def test_when_the_first_checked_address_refuses_the_connection_the_next_checked_one_is_tried(
    dns, development, marketplace, webhook_receiver
) -> None:
    port = webhook_receiver.url.split(":")[2].split("/")[0]
    dns.script(HOST, ["127.0.0.2", "127.0.0.1"])  # nothing listens on 127.0.0.2
    register(marketplace, f"http://{HOST}:{port}/hooks")
    delivery = one_delivery(marketplace)

    assert webhook_deliver(delivery_id=delivery.pk) == Status.DELIVERED

    assert delivery.attempt_log.get().address == "127.0.0.1"


# --- https: connected to the address, TLS checked against the name ---------------------------------------


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signed for ``name``: (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


class TlsReceiver:
    def __init__(self) -> None:
        self.server_names: list[str | None] = []
        self.requests: list[dict] = []
        self.port = 0


def _tls_receiver(tmp_path: Path, certificate_name: str) -> Iterator[tuple[TlsReceiver, Path]]:
    ca, cert, key = _certificate(tmp_path, certificate_name)
    receiver = TlsReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: receiver.server_names.append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    receiver.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield receiver, ca
    server.shutdown()
    server.server_close()


@pytest.fixture
def tls_receiver(tmp_path) -> Iterator[tuple[TlsReceiver, Path]]:
    yield from _tls_receiver(tmp_path, HOST)


@pytest.fixture
def tls_receiver_for_another_name(tmp_path) -> Iterator[tuple[TlsReceiver, Path]]:
    yield from _tls_receiver(tmp_path, "someone-else.test")


def test_https_is_sent_to_the_checked_address_with_sni_and_the_certificate_checked_for_the_name(
    dns, development, marketplace, tls_receiver, settings
) -> None:
    receiver, ca = tls_receiver
    settings.WEBHOOK_CA_BUNDLE = str(ca)
    dns.script(HOST, ["127.0.0.1"], ["127.0.0.2"])
    _, secret = register(marketplace, f"https://{HOST}:{receiver.port}/hooks")
    delivery = one_delivery(marketplace)

    assert webhook_deliver(delivery_id=delivery.pk) == Status.DELIVERED

    assert receiver.server_names == [HOST]
    (request,) = receiver.requests
    assert request["headers"]["host"] == f"{HOST}:{receiver.port}"
    Webhook(secret).verify(request["body"], request["headers"])


def test_https_to_a_receiver_whose_certificate_names_another_host_fails(
    dns, development, marketplace, tls_receiver_for_another_name, settings
) -> None:
    receiver, ca = tls_receiver_for_another_name
    settings.WEBHOOK_CA_BUNDLE = str(ca)
    dns.script(HOST, ["127.0.0.1"])
    register(marketplace, f"https://{HOST}:{receiver.port}/hooks")
    delivery = one_delivery(marketplace)

    assert webhook_deliver(delivery_id=delivery.pk) == Status.PENDING

    delivery.refresh_from_db()
    assert receiver.requests == []
    assert delivery.last_error.startswith("TLSError")


def test_https_to_a_certificate_no_trusted_authority_signed_fails(dns, development, marketplace, tls_receiver) -> None:
    receiver, _ = tls_receiver  # its CA is not in the bundle
    dns.script(HOST, ["127.0.0.1"])
    register(marketplace, f"https://{HOST}:{receiver.port}/hooks")
    delivery = one_delivery(marketplace)

    assert webhook_deliver(delivery_id=delivery.pk) == Status.PENDING

    delivery.refresh_from_db()
    assert receiver.requests == []
    assert delivery.last_error.startswith("TLSError") and "certificate" in delivery.last_error
