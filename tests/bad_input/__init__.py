"""The table of bad inputs: one row per case, collected from ``cases_*.py`` in this package."""
