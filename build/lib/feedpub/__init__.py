"""feedpub: publish feeds from a folder of articles and mail digests of what is new."""

__version__ = "0.1.0"
