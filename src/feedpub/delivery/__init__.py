"""Delivery: hand finished messages to a backend, and drain an issue's queue through it.

`base` holds the `Mailer` protocol and the failure classes, `registry` chooses a backend by
`[delivery] backend`, `maildir` and `smtp` are the backends (`wire` writes SMTP's DATA
stream), and `sender` is the queue loop that builds each message from the stored issue and
records every outcome in the store, a window at a time (`window`).

Never imports: feeds, site, jobs, web, scheduler, daemon or cli. Feeds and delivery never
import each other. It uses mail (messages, tokens) and store (the outbox) below it.
"""
