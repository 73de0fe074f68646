"""Jinja2 templates of the emitted units (logic-free; the compiler computes)."""
