"""Address forms for the wire."""

from __future__ import annotations


def ascii_address(address: str) -> str:
    """The address with an internationalized domain in its ASCII (IDNA) form."""
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    return f"{local}@{domain.encode('idna').decode('ascii')}"
