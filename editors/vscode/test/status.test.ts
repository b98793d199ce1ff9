import assert from "node:assert/strict";
import { test } from "node:test";

import { StatusModel } from "../src/status";

function item() {
  return { text: "", tooltip: undefined as unknown, shown: false, show() { this.shown = true; } };
}

test("the status shows the model and latency once the daemon reports them", () => {
  const shown = item();
  const status = new StatusModel(shown);
  assert.equal(shown.shown, true);
  assert.match(shown.text, /loading~spin\) iquest$/);
  status.update({ model: "coder-7b", template: "qwen", last_latency_ms: 212.4, backend_down: false });
  assert.equal(status.state, "ready");
  assert.equal(shown.text, "$(sparkle) iquest coder-7b 212 ms");
  // Which model answered, in the tooltip too (issue 25).
  assert.equal(shown.tooltip, "iquest: ready\nmodel: coder-7b (template qwen)\nlast suggestion: 212 ms");
});

test("busy while a request is out, ready when the last one ends", () => {
  const shown = item();
  const status = new StatusModel(shown);
  status.update({ model: "m", backend_down: false });
  status.requestStarted();
  status.requestStarted();
  assert.equal(status.state, "busy");
  status.requestEnded();
  assert.equal(status.state, "busy");
  status.requestEnded();
  assert.equal(status.state, "ready");
  status.requestEnded(); // an extra end never goes negative
  status.requestStarted();
  assert.equal(status.state, "busy");
});

test("a backend outage shows as down until the daemon says it answers again", () => {
  const shown = item();
  const status = new StatusModel(shown);
  status.update({ model: "m", last_latency_ms: 90, backend_down: true });
  assert.equal(status.state, "down");
  assert.equal(shown.text, "$(error) iquest m");
  assert.match(String(shown.tooltip), /not answering/);
  status.requestStarted();
  assert.equal(status.state, "down", "a request does not hide the outage");
  status.requestEnded();
  status.update({ backend_down: false, last_latency_ms: 80 });
  assert.equal(status.state, "ready");
  assert.equal(shown.text, "$(sparkle) iquest m 80 ms");
  status.stopped();
  assert.match(shown.text, /circle-slash/);
});
