"""The label-efficiency simulator behind `manage.py simulate` (DESIGN §7).

A package of its own, above both apps: it drives the services of `annotate` and `validators`
as a person would (claims, grades, runs, report cards), so it imports both and neither imports
it. A Django app only to host its management command; it has no models.

- `runner`: the oracle annotator, the throw-away projects, the JSON result;
- `report`: the plot and the summary table the command prints;
- `metrics`: Kendall τ, validator hit/regret, labels needed, parity (pure numpy);
- `static_orderings`: subset2evaluate's static orderings, replayed like selectors.
"""
