"""The ``meshplane`` command line: thin commands over :mod:`meshplane.app` and the API.

Layer 5. Commands parse flags, call one lower-layer entry point and print the
result for people: tables, one-line errors that say what to do next.
"""
