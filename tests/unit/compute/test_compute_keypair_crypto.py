"""Key pair fingerprints and generation, and extra spec validation: pure functions, checked against known values."""

from __future__ import annotations

import base64

import pytest

from kumo.compute import extra_specs
from kumo.compute.keypairs import generate_ssh_keypair, generate_x509_keypair, ssh_fingerprint, x509_fingerprint
from kumo.core.errors import BadRequest

# A fixed key and the fingerprint `ssh-keygen -l -E md5` prints for it (what Nova shows).
FIXED_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4 me@host"
FIXED_MD5 = "f1:02:17:de:ef:c1:30:83:11:8b:82:a0:0e:67:7f:d5"


def test_fingerprint_matches_openssh() -> None:
    assert ssh_fingerprint(FIXED_KEY) == FIXED_MD5


def test_ssh_fingerprint_is_md5_of_the_blob() -> None:
    private, public = generate_ssh_keypair()
    assert private.startswith("-----BEGIN RSA PRIVATE KEY-----")
    fingerprint = ssh_fingerprint(public)
    assert len(fingerprint) == 47 and fingerprint.count(":") == 15


# The last one is well-formed but of a key type cryptography does not know (UnsupportedAlgorithm).
UNKNOWN_TYPE = "ssh-foo " + base64.b64encode(b"\x00\x00\x00\x07ssh-foo\x00\x00\x00\x02xx").decode()


@pytest.mark.parametrize("key", ["", "ssh-rsa", "ssh-rsa !!!", "ssh-dss AAAAB3NzaC1kc3M=", "-----BEGIN", UNKNOWN_TYPE])
def test_invalid_ssh_keys(key: str) -> None:
    with pytest.raises(BadRequest, match="^Keypair data is invalid: failed to generate fingerprint$"):
        ssh_fingerprint(key)


def test_x509() -> None:
    bundle, cert = generate_x509_keypair("some-user")
    assert cert.startswith("-----BEGIN CERTIFICATE-----") and bundle
    assert len(x509_fingerprint(cert).split(":")) == 20
    with pytest.raises(BadRequest, match="failed to generate X509 fingerprint"):
        x509_fingerprint("nope")


@pytest.mark.parametrize(("name", "value", "error"), [
    ("hw:cpu_policy", "dedicated", None),
    ("hw:cpu_policy", "fast", "Validation failed; 'fast' is not one of: dedicated, shared, mixed."),
    ("hw:numa_nodes", "x", "Validation failed; 'x' is not a valid integer value."),
    ("hw:numa_nodes", "0", "Validation failed; '0' is less than the min value of '1'."),
    ("hw:redirected_usb_ports", "16", "Validation failed; '16' is greater than the max value of '15'."),
    ("hw:boot_menu", "maybe", "Validation failed; 'maybe' is not a valid boolean-like value."),
    ("hw:boot_menu", "Yes", None),
    ("hw:mem_page_size", "2MiB", None),
    ("hw:mem_page_size", "huge", "Validation failed; 'huge' is not of the format"),
    ("hw:numa_cpus.0", "0-3,^2", None),
    ("resources1:CUSTOM_GPU", "2", None),
    ("trait:HW_CPU_X86_AVX", "preferred", "is not one of: required, forbidden."),
    ("quota:disk_io_limit", "10", None),
    ("some:other", "anything", None),
    ("plain", "anything", None),
])
def test_extra_spec_validation(name: str, value: str, error: str | None) -> None:
    if error is None:
        extra_specs.validate(name, value)
    else:
        with pytest.raises(BadRequest) as info:
            extra_specs.validate(name, value)
        assert error in info.value.message
