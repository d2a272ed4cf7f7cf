"""flotilla.dashboard (see DESIGN.md)."""
