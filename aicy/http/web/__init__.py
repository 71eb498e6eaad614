"""Pages served to people: the live customer guide (and, later, the consoles).

Rendered by Jinja2 from templates inside the package, with autoescaping on; styles are a static file, and
there is no inline script, so a strict Content-Security-Policy holds. Nothing is fetched from a CDN.
"""
