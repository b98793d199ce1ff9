import assert from "node:assert/strict";
import { test } from "node:test";

import { launchCommand, SETTING_MAP, toServerSettings } from "../src/settings";

test("VS Code settings become the daemon's tables, unset ones left to its config file", () => {
  const values: Record<string, unknown> = {
    "instruct.baseUrl": "http://gpu:8000/v1",
    "instruct.model": "",
    "completion.maxTokens": 48,
    "completion.temperature": 0,
    "completion.multiline": null,
    "actions.showThinking": true,
  };
  assert.deepEqual(toServerSettings((key) => values[key]), {
    instruct: { base_url: "http://gpu:8000/v1" },
    completion: { max_tokens: 48, temperature: 0 },
    actions: { show_thinking: true },
  });
});

test("every mapped setting is declared in package.json, and nothing declared goes unmapped", () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const manifest = require("../../package.json");
  const declared = Object.keys(manifest.contributes.configuration.properties);
  const launch = ["iquest.server.command", "iquest.server.args", "iquest.team.url", "iquest.team.tokenFile"];
  const mapped = SETTING_MAP.map(([key]) => `iquest.${key}`);
  assert.deepEqual([...declared].sort(), [...launch, ...mapped].sort());
});

test("a team server is reached through the bridge, and the token never goes on argv", () => {
  const local = launchCommand({ command: "iquest-lsp", args: ["--config", "c.toml"], teamUrl: "", tokenFile: "" });
  assert.deepEqual(local, { command: "iquest-lsp", args: ["--config", "c.toml"] });
  const team = launchCommand({
    command: "/opt/iquest/bin/iquest-lsp",
    args: ["--config", "ignored.toml"],
    teamUrl: " tls://gpu-host:7070 ",
    tokenFile: "/home/me/.iquest-token",
  });
  assert.deepEqual(team, {
    command: "/opt/iquest/bin/iquest-lsp",
    args: ["connect", "tls://gpu-host:7070", "--token-file", "/home/me/.iquest-token"],
  });
});
