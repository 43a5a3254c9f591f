"""MkDocs hook: `<!-- parameters: NAME -->` on an analysis page becomes the table of that
analysis' parameters, read from the installed analysis itself, so the page cannot drift from the
code."""

from __future__ import annotations

import re

PLACEHOLDER = re.compile(r"<!-- parameters: (\w+) -->")


def on_page_markdown(markdown: str, page, config, files) -> str:
    return PLACEHOLDER.sub(lambda match: parameter_table(match.group(1)), markdown)


def parameter_table(name: str) -> str:
    from rginspect.plugin_manager import available_analyses

    analyses = available_analyses()
    if name not in analyses:
        raise ValueError(f"docs: no installed analysis named {name!r}")
    rows = [
        f"| `{name}.{key}` | {parameter.type.__name__} | `{parameter.default!r}` | "
        f"{parameter.help.replace('|', '/')} |"
        for key, parameter in analyses[name].parameters.items()
    ]
    header = "| parameter | type | default | meaning |\n|---|---|---|---|"
    return "\n".join([header, *rows]) if rows else "This analysis takes no parameters."
