"""TLS is always verified; a private CA is trusted through ca_bundle."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from http_support import STATIC_TOKEN, DirectoryEmulator, Recorder

from oomnitza_connect.errors import TransportError
from oomnitza_connect.models import AuthKind, Credential, VendorInfo
from oomnitza_connect.transport.http import ClientOptions
from oomnitza_connect.vendors.session import open_session

INFO = VendorInfo(
    name="directory",
    display_name="Directory",
    base_url="https://api.directory.invalid",
    auth_kinds=(AuthKind.API_KEY,),
)


def self_signed(
    directory: Path, common_name: str = "oomnitza-connect test CA"
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def https_emulator(tmp_path: Path) -> Iterator[tuple[DirectoryEmulator, Path]]:
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    with DirectoryEmulator(ssl_context=context) as emulator:
        yield emulator, cert_file


def credential(base_url: str, ca_bundle: str | None = None) -> Credential:
    return Credential(
        name="dir",
        vendor="directory",
        kind=AuthKind.API_KEY,
        token=STATIC_TOKEN,
        base_url=base_url,
        ca_bundle=ca_bundle,
    )


def test_self_signed_server_is_refused_with_a_hint(
    https_emulator: tuple[DirectoryEmulator, Path],
) -> None:
    emulator, _ = https_emulator
    assert emulator.base_url.startswith("https://127.0.0.1:")
    session = open_session(
        INFO, credential(emulator.base_url), {}, ClientOptions(), sleep=Recorder()
    )
    with session, pytest.raises(TransportError) as raised:
        session.http.get_json("/echo")
    message = str(raised.value)
    assert "TLS verification failed" in message
    assert "ca_bundle" in message
    assert "certificate verify failed" in message
    assert len(emulator.requests) == 0  # the handshake failed before any request


def test_https_to_a_plain_http_port_says_so_not_ca_bundle() -> None:
    with DirectoryEmulator() as emulator:
        assert emulator.base_url.startswith("http://127.0.0.1:")
        https_url = "https://" + emulator.base_url.removeprefix("http://")
        session = open_session(INFO, credential(https_url), {}, ClientOptions(), sleep=Recorder())
        with session, pytest.raises(TransportError) as raised:
            session.http.get_json("/echo")
    message = str(raised.value)
    host_port = https_url.removeprefix("https://")
    assert message == (
        f"directory: the server at {host_port} answered in plain HTTP, not TLS; is the URL's "
        "scheme right (http:// rather than https://, or the server's TLS port)?"
    )
    assert "ca_bundle" not in message


def test_ca_bundle_on_the_credential_trusts_the_private_ca(
    https_emulator: tuple[DirectoryEmulator, Path],
) -> None:
    emulator, cert_file = https_emulator
    cred = credential(emulator.base_url, ca_bundle=str(cert_file))
    with open_session(INFO, cred, {}, ClientOptions()) as session:
        assert session.http.options.ca_bundle == str(cert_file)
        assert (
            session.http.get_json("/echo")["headers"]["Authorization"] == f"Bearer {STATIC_TOKEN}"
        )


def test_ca_bundle_in_options_wins(https_emulator: tuple[DirectoryEmulator, Path]) -> None:
    emulator, cert_file = https_emulator
    cred = credential(emulator.base_url, ca_bundle="/nonexistent/ca.pem")
    with open_session(INFO, cred, {}, ClientOptions(ca_bundle=str(cert_file))) as session:
        assert "headers" in session.http.get_json("/echo")


def test_ca_bundle_on_the_credential_reaches_a_plugin_that_builds_its_own_client(
    tmp_path: Path,
) -> None:
    # The generic plugin (and every plugin rendered from the new-plugin
    # template) builds its HttpClient from the options it is given, not
    # through open_session, so the credential's private CA must be in them.
    import attrs

    from oomnitza_connect import get_connector
    from oomnitza_connect.plugins import register_plugin
    from oomnitza_connect.testing import generic

    cert_file, key_file = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    with register_plugin(generic.vendor), generic.GenericEmulator(ssl_context=context) as emulator:
        cred = attrs.evolve(generic.credential_for(emulator), ca_bundle=str(cert_file))
        connector = get_connector("generic")
        options = ClientOptions(base_url=emulator.base_url, max_retries=0)
        with connector.authenticate(cred, options=options) as session:
            assert session.http.options.ca_bundle == str(cert_file)
