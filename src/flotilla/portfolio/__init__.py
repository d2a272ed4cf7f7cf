"""flotilla.portfolio (see DESIGN.md)."""
