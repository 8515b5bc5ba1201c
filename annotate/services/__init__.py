"""Every write of the annotate app goes through a function in this package (STYLE.md)."""
