"""Presentation shared by leadflow's interfaces: the terminal, the HTML board and (next) the server's pages.

What lives here turns the engine's results into something to look at (the board page and its Jinja2 templates,
PNG charts of the reports, the Mermaid diagram of a process, the demo's narration) and decides nothing: every
figure comes from an engine operation. The engine never imports this package; the CLI commands and the HTTP
service do, each module only when its output is asked for, so the everyday commands stay light.
"""
