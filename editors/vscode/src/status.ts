// The status bar item: model, last suggestion latency, and the daemon's state.
// Pure apart from the item it is given: tested without VS Code.

export type DaemonState = "starting" | "ready" | "busy" | "down" | "stopped";

export interface StatusItem {
  text: string;
  tooltip?: unknown;
  show(): void;
}

import type { DaemonStats } from "./protocol";

export type { DaemonStats };

const ICONS: Record<DaemonState, string> = {
  starting: "$(loading~spin)",
  ready: "$(sparkle)",
  busy: "$(loading~spin)",
  down: "$(error)",
  stopped: "$(circle-slash)",
};

export class StatusModel {
  state: DaemonState = "starting";
  model: string | null = null;
  template: string | null = null;
  latencyMs: number | null = null;
  private pending = 0;

  constructor(private readonly item: StatusItem) {
    this.render();
    item.show();
  }

  requestStarted(): void {
    this.pending += 1;
    if (this.state !== "down" && this.state !== "stopped") {
      this.state = "busy";
    }
    this.render();
  }

  requestEnded(): void {
    this.pending = Math.max(0, this.pending - 1);
    if (this.pending === 0 && this.state === "busy") {
      this.state = "ready";
    }
    this.render();
  }

  // The daemon's own figures: the model it found, the last latency, whether its backend is down.
  update(stats: DaemonStats): void {
    this.model = stats.model ?? this.model;
    this.template = stats.template ?? this.template;
    if (typeof stats.last_latency_ms === "number") {
      this.latencyMs = stats.last_latency_ms;
    }
    if (stats.backend_down) {
      this.state = "down";
    } else if (this.state === "down" || this.state === "starting") {
      this.state = this.pending > 0 ? "busy" : "ready";
    }
    this.render();
  }

  stopped(): void {
    this.state = "stopped";
    this.render();
  }

  render(): void {
    const parts = [`${ICONS[this.state]} iquest`];
    if (this.model) {
      parts.push(this.model);
    }
    if (this.latencyMs !== null && this.state !== "down") {
      parts.push(`${Math.round(this.latencyMs)} ms`);
    }
    this.item.text = parts.join(" ");
    const states: Record<DaemonState, string> = {
      starting: "starting the daemon",
      ready: "ready",
      busy: "asking the model",
      down: "the model server is not answering; suggestions pause until it does",
      stopped: "the daemon stopped (iquest: Restart the daemon)",
    };
    // Which model answers (and with which prompt template): what people look for here.
    const lines = [`iquest: ${states[this.state]}`];
    if (this.model) {
      lines.push(`model: ${this.model}` + (this.template ? ` (template ${this.template})` : ""));
    }
    if (this.latencyMs !== null) {
      lines.push(`last suggestion: ${Math.round(this.latencyMs)} ms`);
    }
    this.item.tooltip = lines.join("\n");
  }
}
