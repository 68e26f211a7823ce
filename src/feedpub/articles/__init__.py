"""Articles: read dated entries from the articles/ folder into `Article` records.

`model` holds the record and the text rules, `plain` and `markdown` parse one format each
(`fields` is what they share), `scan` walks the folder and orders what it found, `cache` keeps
what the last build parsed, `index` keeps it for lazy reading (long fields read on first
use). Everything here is pure apart from `scan`, `cache` and `index`, which read the articles
folder and the build cache.

Never imports: any other wing (feeds, site, mail, delivery, store, jobs, web, scheduler,
daemon, cli). Articles know no database, no feed format, no mail and no screen.
"""
