"""Stream lifecycle: the one place where store, media, realtime and ledger meet."""
