"""The status page: a local web page showing AutoHome at a glance (see app.py)."""
