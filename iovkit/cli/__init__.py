"""The command line: one thin module per command group; they parse, call the library, and render."""
