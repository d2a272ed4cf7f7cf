"""flotilla.gateway (see DESIGN.md)."""
