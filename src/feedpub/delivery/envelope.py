"""What turns a rendered copy into what goes on the wire: its envelope sender (VERP when
`[delivery] return_path` is set) and its DKIM signatures (when `[delivery.dkim]` has a key).

The send loop asks this one object for both, so the loop itself knows nothing of either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..config import Config
from ..mail import verp

if TYPE_CHECKING:
    from .dkim import Signer


class Envelope:
    """Per-run: keys are read once, then every copy is signed and addressed on its own."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.signer: Signer | None = None
        if cfg.delivery.dkim.enabled:  # dkimpy and cryptography load only when signing
            from .dkim import Signer, configured_keys

            self.signer = Signer(configured_keys(cfg))

    def sender(self, subscriber_id: int, issue_id: int) -> str:
        """The envelope sender (MAIL FROM) of one copy."""
        return verp.return_path(self.cfg, subscriber_id, issue_id)

    def seal(self, data: bytes) -> bytes:
        """The copy as sent: signed when DKIM is configured, else unchanged."""
        return data if self.signer is None else self.signer.sign(data)

    def seal_parts(self, head: bytes, body: Sequence[bytes]) -> tuple[bytes, ...]:
        """`seal(head + body)` for a copy rendered as fragments (`render_parts`), as
        fragments that join into it: the fragments every copy shares stay the same objects,
        so the signer canonicalises them once and the SMTP backend dot-stuffs them once."""
        if self.signer is None:
            return (head, *body)
        return tuple(self.signer.signed_parts(head, body))
