"""Exercise checks, one module per chapter (`ch15`, `ch16`, ...); `_common` holds what
they share. The checks of chapters 1-14 are still in `helpers.checks`."""
