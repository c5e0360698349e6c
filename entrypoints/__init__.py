"""The entrypoints: command line, HTTP API and web page, demo, audit commands, simulation, and the one wiring.

The top layer: it may import every package below it; nothing imports it.
"""
