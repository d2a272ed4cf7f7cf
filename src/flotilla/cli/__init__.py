"""The flotilla command line."""
