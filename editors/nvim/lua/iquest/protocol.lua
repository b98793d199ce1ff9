-- The daemon's LSP extensions by name, mirroring lsp/extensions.py
-- (tests/test_extensions.py checks the two agree).
return {
  STATS = "iquest/stats",
  PARTIAL_ACCEPT = "iquest/didPartiallyAccept",
  EXPLANATION = "iquest/explanation",
  EXPLAIN = "iquest.explain",
  FIX = "iquest.fix",
  FIND_BUGS = "iquest.findBugs",
  ASK = "iquest.ask",
  ACCEPTED = "iquest.accepted",
  CAPABILITY = "iquest",
}
