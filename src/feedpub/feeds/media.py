"""Media in feeds: the site's logo and icon, each entry's image and attachments, podcast tags.

Pure. `feed_media` reads `[site] logo`/`icon` and `[feeds] podcast*`; `item_media` makes an
entry's image and attachments absolute; the `*_xml` functions write the elements the RSS and
Atom writers splice in: Media RSS (`media:content`, `media:thumbnail`), enclosures, and the
iTunes tags Apple Podcasts requires (author, image, category, explicit, duration).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

from ..articles.media import first_image
from ..articles.model import Article
from ..config import Config

MEDIA_NS = "http://search.yahoo.com/mrss/"
ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"


@dataclass(frozen=True)
class FeedMedia:
    """The feed-level pictures and podcast settings (absolute URLs, "" when unset)."""

    logo: str = ""
    icon: str = ""
    podcast: bool = False
    category: str = ""
    explicit: bool = False
    author: str = ""
    email: str = ""


@dataclass(frozen=True)
class Enclosure:
    """One attachment as feeds write it."""

    url: str
    type: str
    length: int
    duration: str = ""

    @property
    def seconds(self) -> int:
        """The duration in seconds (0 when unknown)."""
        if not self.duration:
            return 0
        total = 0
        for part in self.duration.split(":"):
            total = total * 60 + int(part)
        return total


def site_url(cfg: Config, value: str) -> str:
    """A configured or front-matter URL made absolute against the site's base URL."""
    return urljoin(cfg.site.base_url, value) if value else ""


def feed_media(cfg: Config) -> FeedMedia | None:
    """The feed-level media, or None when the site sets none (feeds stay as they were)."""
    site, feeds = cfg.site, cfg.feeds
    if not (site.logo or site.icon or feeds.podcast):
        return None
    return FeedMedia(logo=site_url(cfg, site.logo), icon=site_url(cfg, site.icon),
                     podcast=feeds.podcast, category=feeds.podcast_category,
                     explicit=feeds.podcast_explicit,
                     author=site.author.strip() or site.title, email=site.email)


def item_media(article: Article, base_url: str) -> tuple[str, tuple[Enclosure, ...]]:
    """The entry's image (front matter, `Image:` line, else the body's first picture) and its
    attachments, with absolute URLs. An attachment without a length has none known: it is
    left out (the build fills lengths in, or reports the article)."""
    image = article.image or ("" if article.plain_body else first_image(article.html))
    image = urljoin(base_url, image) if image else ""
    enclosures = tuple(Enclosure(urljoin(base_url, a.url), a.type, a.length, a.duration)
                       for a in article.attachments if a.length is not None)
    return image, enclosures


def _attr(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def image_xml(image: str, indent: str) -> str:
    """Media RSS elements for an entry's picture."""
    if not image:
        return ""
    url = _attr(image)
    return (f'{indent}<media:content url="{url}" medium="image"/>\n'
            f'{indent}<media:thumbnail url="{url}"/>\n')


def rss_enclosure_xml(enclosures: tuple[Enclosure, ...], indent: str) -> str:
    """RSS 2.0 allows one enclosure: the first attachment."""
    if not enclosures:
        return ""
    first = enclosures[0]
    return (f'{indent}<enclosure url="{_attr(first.url)}" length="{first.length}" '
            f'type="{_attr(first.type)}"/>\n')


def atom_enclosure_xml(enclosures: tuple[Enclosure, ...], indent: str) -> str:
    return "".join(f'{indent}<link href="{_attr(e.url)}" rel="enclosure" type="{_attr(e.type)}" '
                   f'length="{e.length}"/>\n' for e in enclosures)


def itunes_item_xml(media: FeedMedia | None, enclosures: tuple[Enclosure, ...],
                    image: str, indent: str) -> str:
    """Per-episode iTunes tags: duration (of the first attachment) and image."""
    if media is None or not media.podcast:
        return ""
    out = ""
    if enclosures and enclosures[0].duration:
        out += f"{indent}<itunes:duration>{enclosures[0].seconds}</itunes:duration>\n"
    if image:
        out += f'{indent}<itunes:image href="{_attr(image)}"/>\n'
    return out


def itunes_channel_xml(media: FeedMedia, indent: str) -> str:
    """Channel-level iTunes tags (Apple Podcasts: author, image, category, explicit, owner)."""
    if not media.podcast:
        return ""
    category = media.category.split("/", 1)
    inner = (f'{indent}  <itunes:category text="{_attr(category[1].strip())}"/>\n'
             if len(category) > 1 else "")
    tag = f'{indent}<itunes:category text="{_attr(category[0].strip())}"'
    category_xml = f"{tag}>\n{inner}{indent}</itunes:category>\n" if inner else f"{tag}/>\n"
    return (f"{indent}<itunes:author>{_text(media.author)}</itunes:author>\n"
            f'{indent}<itunes:image href="{_attr(media.logo)}"/>\n'
            f"{category_xml}"
            f"{indent}<itunes:explicit>{'true' if media.explicit else 'false'}"
            "</itunes:explicit>\n"
            f"{indent}<itunes:owner>\n{indent}  <itunes:name>{_text(media.author)}</itunes:name>\n"
            f"{indent}  <itunes:email>{_text(media.email)}</itunes:email>\n"
            f"{indent}</itunes:owner>\n"
            f"{indent}<itunes:type>episodic</itunes:type>\n")
