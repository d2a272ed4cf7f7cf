"""flotilla.monitoring (see DESIGN.md)."""
