"""flotilla.registry (see DESIGN.md)."""
