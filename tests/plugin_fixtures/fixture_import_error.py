"""A plugin that raises while being imported."""

raise ImportError("fixture_import_error needs a module that is not installed")
