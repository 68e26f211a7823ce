"""Reports that come back by mail: bounces (RFC 3464 DSNs and the non-standard ones of common
servers, read with flufl.bounce), spam complaints (ARF, RFC 5965) and RFC 2369 unsubscribe
mails; `parse` reads one message into a `Report` (pure), `mailbox` reads a Maildir folder or
an IMAP mailbox over TLS and removes a message only when told to.

Never imports: store, delivery, jobs, web, scheduler, daemon, cli, feeds or site. Applying a
report to subscribers is `jobs.bounces`' work.
"""
