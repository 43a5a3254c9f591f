"""First-party rginspect analyses, installed as `rginspect_plugins` and registered like any plugin."""
