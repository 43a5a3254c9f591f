"""One self-contained HTML report per run, rendered from stored results only: `build` turns a
results tree into a page (sections drawn in the background while a run goes on), `render` holds
the templates, `inline` shows the same sections under a notebook cell, `sweep` and `compare`
draw the combined pages."""
