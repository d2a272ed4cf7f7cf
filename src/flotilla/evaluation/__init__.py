"""flotilla.evaluation (see DESIGN.md)."""
