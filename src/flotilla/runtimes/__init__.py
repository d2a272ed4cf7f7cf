"""flotilla.runtimes (see DESIGN.md)."""
