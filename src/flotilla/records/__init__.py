"""flotilla.records (see DESIGN.md)."""
