"""The daemon: `feedpub run` (build, serve, schedule, watch articles/ in one process) and
`feedpub status` (what it is doing, read-only).

The one place that wires the web server, the scheduler and the jobs together; only `cli`
sits above it.

Never imports: cli.
"""
