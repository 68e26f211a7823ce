"""Jobs: the only layer that chains the wings: config -> articles -> feeds and site pages
(`publish`, `check`; `stages` are the steps of a build, `incremental` and `live` re-plan only
what changed files reach, `arrange` keeps the daemon's articles in order); articles -> mail
-> delivery (`mailing`); sign-ups and confirmations (`subscriptions`).

`cli`, `scheduler`, `web` and `daemon` call these functions.

Never imports: web, scheduler, daemon or cli.
"""
