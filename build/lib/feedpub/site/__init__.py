"""Site: the HTML pages of the site (home, article pages) and the page template environment.

Pages are planned like feeds: each output file has a key and a lazy renderer. The web wing
renders its form pages with the same environment (`pages.page_environment`).

Never imports: mail, delivery, store, jobs, web, scheduler, daemon or cli. It may use
articles and feeds (tag slugs, entry values), never the other way round.
"""
