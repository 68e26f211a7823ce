"""The usual edit (`jobs.edits`) under random changes to Markdown entries: the summary, the
`updated:` date, the offset a time is written with, the body (a warning appearing or going),
edits of drafts and of scheduled entries, attachments whose length is read from a media file,
while time moves on and scheduled entries come due. After every step the daemon (`LiveSite`)
and `feedpub build` from the article index write exactly the files of a cold build."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.test_incremental import MEDIA, NOW, SMALL, Writer, _beside, _tree

from feedpub.config import Config
from feedpub.jobs.live import LiveSite
from feedpub.jobs.publish import build_feeds

STEP = timedelta(hours=5)  # how far the clock moves between two steps
OFFSETS = ("+00:00", "+01:00", "-05:00", "+05:30")


def _cold(cfg: Config, root: Path, now: datetime) -> dict[str, bytes]:
    other = _beside(cfg, root)
    build_feeds(other, now=now, workers=1, force=True)
    return _tree(other.public_dir)


class MdWriter(Writer):
    """`Writer` with Markdown entries kept as fields, and edits that keep the arrangement."""

    def __init__(self, folder: Path, rng: random.Random) -> None:
        super().__init__(folder, rng)
        self.md: dict[str, dict[str, object]] = {}

    def when(self, *, future: bool = False) -> tuple[str, str]:
        """(date text, offset) of a new entry: all-day, or a time with an offset."""
        rng = self.rng
        if future:  # within the run: it comes due as the clock moves
            instant = NOW + timedelta(hours=rng.randrange(1, 200))
        else:
            instant = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(0, 40))
        if rng.random() < 0.4 and not future:
            return instant.strftime("%Y-%m-%d"), ""
        offset = rng.choice(OFFSETS)
        return _written(instant.replace(minute=rng.choice((0, 30)), second=0), offset), offset

    def render(self, name: str) -> str:
        f = self.md[name]
        lines = ["---", f"title: {f['title']}", f"date: {f['date']}"]
        if f["tags"]:
            lines.append("tags: [" + ", ".join(str(t) for t in f["tags"]) + "]")  # type: ignore[attr-defined]
        if f["summary"]:
            lines.append(f"summary: {f['summary']}")
        if f["updated"]:
            lines.append(f"updated: {f['updated']}")
        if f["draft"]:
            lines.append("draft: true")
        if f["media"]:
            lines.append(f"attachments: [{{url: media/{f['media']}.mp3, type: audio/mpeg}}]")
        lines += ["---", str(f["body"]), ""]
        return "\n".join(lines)

    def words(self, low: int = 3, high: int = 20) -> str:
        return " ".join(self.rng.choice(("river", "bridge", "tram", "garden", "harbour"))
                        for _ in range(self.rng.randint(low, high)))

    def add_md(self) -> tuple[str, list[str]]:
        rng = self.rng
        self.count += 1
        name = f"md-{self.count}.md"
        date, _ = self.when(future=rng.random() < 0.2)
        self.md[name] = {
            "title": rng.choice(("Tram", "River", "Bridge", "Market")) + f" {self.count}",
            "date": date, "tags": rng.sample(("city", "transport", "culture"), rng.randint(0, 2)),
            "summary": self.words(2, 6) if rng.random() < 0.4 else "",
            "updated": "", "draft": rng.random() < 0.1,
            "media": rng.choice(MEDIA) if rng.random() < 0.3 else "",
            "body": self.words() + ("\x07 bell" if rng.random() < 0.1 else ""),
        }
        return "add-md", [self.write(name, self.render(name))]

    def edit_md(self) -> tuple[str, list[str]]:
        rng = self.rng
        names = [n for n in self.md if (self.folder / n).exists()]
        if not names:
            return self.add_md()
        name = rng.choice(names)
        f = self.md[name]
        roll = rng.random()
        if roll < 0.15:
            kind = "summary"
            f["summary"] = "" if f["summary"] and rng.random() < 0.3 else self.words(2, 6)
        elif roll < 0.3:
            kind = "updated"
            f["updated"] = "" if f["updated"] and rng.random() < 0.3 else (
                datetime(2025, 3, 1) + timedelta(days=rng.randrange(0, 30))).strftime(
                "%Y-%m-%dT%H:%M" + rng.choice(OFFSETS))
        elif roll < 0.42:
            kind = "offset"
            date = str(f["date"])
            if len(date) > 10:  # the same instant written with another offset
                instant = datetime.fromisoformat(date)
                f["date"] = _written(instant, rng.choice(OFFSETS))
            else:
                f["body"] = str(f["body"]) + " more"
        elif roll < 0.55:
            kind = "warning"  # a character feeds must not carry appears or goes
            body = str(f["body"])
            f["body"] = body.replace("\x07", "") if "\x07" in body else body + " \x07 bell"
        elif roll < 0.68:
            kind = "title"
            f["title"] = rng.choice(("Tram", "River", "Bridge", "Market", "Harbour")) + \
                f" {rng.randrange(100)}"
        elif roll < 0.73:
            kind = "media"
            f["media"] = "" if f["media"] else rng.choice(MEDIA)
        elif roll < 0.78:
            kind = "draft"
            f["draft"] = not f["draft"]
        elif roll < 0.83:
            kind = "redate"
            f["date"] = self.when(future=rng.random() < 0.3)[0]
        else:
            kind = "body"
            f["body"] = self.words() + (" \x07 bell" if "\x07" in str(f["body"]) else "")
        return f"md-{kind}", [self.write(name, self.render(name))]

    def step(self) -> tuple[str, list[str]]:
        roll = self.rng.random()
        if roll < 0.1:
            return self.add_md()
        if roll < 0.75:
            return self.edit_md()
        kind, paths = super().step()
        for path in paths:  # a Markdown entry deleted, renamed or rewritten by `Writer`
            self.md.pop(os.path.basename(path), None)
        return kind, paths


def _written(instant: datetime, offset: str) -> str:
    sign = -1 if offset[0] == "-" else 1
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    zone = timedelta(hours=hours, minutes=minutes) * sign
    return (instant.astimezone(UTC) + zone).strftime("%Y-%m-%dT%H:%M") + offset


@pytest.mark.parametrize("variant", ["pages", "feeds-only", "no-tag-feeds"])
@pytest.mark.parametrize("seed", [int(s) for s in os.environ.get("FEEDPUB_SEEDS", "1 2").split()])
def test_random_usual_edits_give_the_files_of_a_cold_build(make_site, tmp_path, seed,
                                                           variant) -> None:
    extra = {"pages": "", "feeds-only": "\npages = false",
             "no-tag-feeds": ""}[variant]
    text = SMALL.replace("per_page = 3", "per_page = 3" + extra)
    if variant == "no-tag-feeds":
        text = text.replace("[feeds]", "[feeds]\ntag_feeds = false")
    cfg = make_site(config_text=text)
    rng = random.Random(seed)
    writer = MdWriter(cfg.articles_dir, rng)
    for name in MEDIA:
        writer.media(name)
    for _ in range(20):
        writer.step()
    now = NOW
    site = LiveSite(cfg)
    site.build(None, now=now)
    cli = _beside(cfg, tmp_path / "cli")
    build_feeds(cli, now=now, workers=1)
    done: list[str] = []
    for number in range(40):
        kind, paths = writer.step()
        done.append(kind)
        now += STEP
        report = site.build(paths, now=now)
        from_disk = build_feeds(cli, now=now, workers=1)
        expected = _cold(cfg, tmp_path / f"cold-{number}", now)
        for which, got in (("daemon", _tree(cfg.public_dir)), ("cli", _tree(cli.public_dir))):
            assert got.keys() == expected.keys(), f"{which}: seed {seed}, steps {done}"
            wrong = [path for path in got if got[path] != expected[path]]
            assert not wrong, f"{which}: seed {seed}, steps {done}: {wrong[:5]}"
        assert from_disk.articles == report.articles
        assert sorted(map(str, from_disk.warnings)) == sorted(map(str, report.warnings))
