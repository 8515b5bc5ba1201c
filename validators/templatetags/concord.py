from django import template

register = template.Library()


def _number(value) -> float | None:
    # Templates resolve a missing attribute to "", which means undefined here too.
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@register.filter
def ratio(value, digits: int = 2) -> str:
    """A rate for display; undefined values are shown as an em dash, never as 0 or 1."""
    value = _number(value)
    if value is None:
        return "—"
    return f"{value:.{int(digits)}f}"


@register.filter
def interval(value) -> str:
    if not value:
        return ""
    low, high = value
    return f"[{low:.2f}, {high:.2f}]"


@register.filter
def ring_class(value) -> str:
    value = _number(value)
    if value is None:
        return "ring-none"
    if value >= 0.9:
        return "ring-green"
    if value >= 0.7:
        return "ring-yellow"
    if value >= 0.5:
        return "ring-orange"
    return "ring-red"


@register.filter
def ring_dash(value) -> str:
    """stroke-dasharray for an SVG circle of circumference 100."""
    value = _number(value)
    fraction = 0.0 if value is None else max(0.0, min(1.0, value))
    return f"{fraction * 100:.1f} 100"


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None
