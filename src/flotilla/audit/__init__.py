"""flotilla.audit (see DESIGN.md)."""
