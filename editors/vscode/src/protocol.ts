// The daemon's LSP extensions: names and payloads, mirroring lsp/extensions.py
// (tests/test_extensions.py checks the two agree).

export const STATS = "iquest/stats";
export const PARTIAL_ACCEPT = "iquest/didPartiallyAccept";
export const EXPLANATION = "iquest/explanation";

export const EXPLAIN = "iquest.explain";
export const FIX = "iquest.fix";
export const FIND_BUGS = "iquest.findBugs";
export const ASK = "iquest.ask";
export const ACCEPTED = "iquest.accepted";

// Sent in experimental client capabilities: this client renders explanations itself.
export const CAPABILITY = "iquest";

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

// The one argument of EXPLAIN / FIX / FIND_BUGS / ASK.
export interface ActionArguments {
  uri: string;
  range?: Range;
  question?: string;
  problem?: string;
}

export interface PartialAcceptParams {
  uri?: string;
  acceptedLength: number;
}

export interface ExplanationParams {
  uri: string;
  range: Range;
  kind: "explain" | "ask" | string;
  question?: string | null;
  markdown: string;
  document?: string | null;
}

// The part of the STATS answer the plugin reads.
export interface DaemonStats {
  model?: string | null;
  template?: string | null;
  last_latency_ms?: number | null;
  backend_down?: boolean;
  in_flight?: number;
  suggestions?: number;
  accepted?: number;
  partially_accepted?: number;
  accepted_chars?: number;
  // Team mode only: the daemon process serving this editor.
  worker_pid?: number;
}
