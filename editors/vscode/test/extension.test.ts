import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { FakeLanguageClient, vscodeStub } from "./stubs";
import { activate, deactivate } from "../src/extension";
import { explanationMarkdown } from "../src/explanations";

function context(secrets = new Map<string, string>()) {
  return {
    subscriptions: [] as Array<{ dispose(): unknown }>,
    secrets: {
      get: async (key: string) => secrets.get(key),
      store: async (key: string, value: string) => void secrets.set(key, value),
      delete: async (key: string) => void secrets.delete(key),
    },
  };
}

beforeEach(async () => {
  await deactivate();
  vscodeStub.reset();
  FakeLanguageClient.instances.length = 0;
});

test("activation launches the daemon over stdio with the settings mapped", async () => {
  vscodeStub.settings.set("iquest.instruct.baseUrl", "http://gpu:8000/v1");
  vscodeStub.settings.set("iquest.completion.maxTokens", 32);
  await activate(context() as any);
  const [client] = FakeLanguageClient.instances;
  assert.equal(client.started, true);
  assert.deepEqual(client.serverOptions, { command: "iquest-lsp", args: [], transport: 0 });
  assert.deepEqual(client.clientOptions.initializationOptions, {
    iquest: { instruct: { base_url: "http://gpu:8000/v1" }, completion: { max_tokens: 32 } },
  });
  // The daemon pulls section "iquest" and gets its own names; other sections get null.
  const answer = client.clientOptions.middleware.workspace.configuration({
    items: [{ section: "iquest" }, { section: "python" }],
  });
  assert.deepEqual(answer, [{ instruct: { base_url: "http://gpu:8000/v1" }, completion: { max_tokens: 32 } }, null]);
  // Client capabilities say explanations are rendered here.
  const capabilities: Record<string, unknown> = {};
  client.features.forEach((feature) => feature.fillClientCapabilities(capabilities));
  assert.deepEqual(capabilities.experimental, { iquest: { explanations: true } });
  // The status bar shows what iquest/stats said.
  assert.equal(vscodeStub.statusItems[0].text, "$(sparkle) iquest coder-7b 212 ms");
  for (const id of ["iquest.vscode.explain", "iquest.vscode.fix", "iquest.vscode.findBugs", "iquest.vscode.ask", "iquest.vscode.restart"]) {
    assert.ok(vscodeStub.registered.has(id), id);
  }
});

test("inline requests mark the status busy while they run", async () => {
  await activate(context() as any);
  const [client] = FakeLanguageClient.instances;
  let seenDuring = "";
  const items = await client.clientOptions.middleware.provideInlineCompletionItems(
    {}, {}, {}, {},
    async () => {
      seenDuring = vscodeStub.statusItems[0].text;
      return [{ insertText: "return 1" }];
    },
  );
  assert.deepEqual(items, [{ insertText: "return 1" }]);
  assert.match(seenDuring, /loading~spin/);
  assert.match(vscodeStub.statusItems[0].text, /sparkle/);
});

test("an iquest/explanation notification opens a markdown preview", async () => {
  await activate(context() as any);
  const [client] = FakeLanguageClient.instances;
  const payload = {
    uri: "file:///proj/app.py",
    range: { start: { line: 2, character: 0 }, end: { line: 9, character: 0 } },
    kind: "explain",
    markdown: "It adds **one**.",
  };
  client.handlers.get("iquest/explanation")!(payload);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(vscodeStub.opened.length, 1);
  assert.equal(vscodeStub.opened[0].language, "markdown");
  assert.equal(vscodeStub.opened[0].content, explanationMarkdown(payload as any));
  assert.match(vscodeStub.opened[0].content!, /^# Explanation: app.py, lines 3-10\n\nIt adds \*\*one\*\*\./);
  const preview = vscodeStub.executed.find(([id]) => id === "markdown.showPreviewToSide");
  assert.ok(preview, "the preview was opened");
});

test("commands reach the daemon through workspace/executeCommand", async () => {
  await activate(context() as any);
  const [client] = FakeLanguageClient.instances;
  vscodeStub.window.activeTextEditor = {
    document: { uri: { toString: () => "file:///proj/a.py" }, getText: () => "" } as any,
    selection: { isEmpty: true, start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
  };
  await vscodeStub.commands.executeCommand("iquest.vscode.findBugs");
  assert.deepEqual(client.requests.at(-1), [
    "workspace/executeCommand",
    { command: "iquest.findBugs", arguments: [{ uri: "file:///proj/a.py" }] },
  ]);
});

test("a team URL launches the bridge instead of a local daemon", async () => {
  vscodeStub.settings.set("iquest.team.url", "wss://gpu-host:7071");
  await activate(context() as any);
  assert.deepEqual(FakeLanguageClient.instances[0].serverOptions.args, ["connect", "wss://gpu-host:7071"]);
});

test("the team token is kept in secret storage and reaches the bridge only through its environment", async () => {
  const secrets = new Map<string, string>();
  vscodeStub.settings.set("iquest.team.url", "tls://team.example:7070");
  vscodeStub.settings.set("iquest.team.tokenFile", "/home/me/.iquest-token");
  await activate(context(secrets) as any);
  // No stored token: the bridge reads the token file.
  assert.deepEqual(FakeLanguageClient.instances[0].serverOptions, {
    command: "iquest-lsp",
    args: ["connect", "tls://team.example:7070", "--token-file", "/home/me/.iquest-token"],
    transport: 0,
  });
  const token = "iq_Zx9-secret-token-value";
  vscodeStub.inputAnswer = `  ${token}\n`;
  await vscodeStub.commands.executeCommand("iquest.vscode.setTeamToken");
  assert.equal((vscodeStub.inputOptions[0] as { password: boolean }).password, true);
  assert.equal(secrets.get("iquest.teamToken"), token);
  const restarted = FakeLanguageClient.instances.at(-1)!;
  assert.equal(FakeLanguageClient.instances.length, 2);
  assert.equal(restarted.started, true);
  const options = restarted.serverOptions as { args: string[]; options?: { env?: Record<string, string> } };
  assert.deepEqual(options.args, ["connect", "tls://team.example:7070"]);
  assert.equal(options.options?.env?.IQUEST_TOKEN, token);
  assert.equal(options.options?.env?.PATH, process.env.PATH, "the rest of the environment is kept");
  // Nowhere else: not in argv, the daemon's settings or the output channel.
  const visible = JSON.stringify([options.args, restarted.clientOptions.initializationOptions, vscodeStub.logged]);
  assert.ok(!visible.includes(token));
  assert.ok(!JSON.stringify([...vscodeStub.settings.values()]).includes(token));
  // Sign out: forgotten, and the bridge is back to the token file.
  await vscodeStub.commands.executeCommand("iquest.vscode.signOut");
  assert.equal(secrets.has("iquest.teamToken"), false);
  const signedOut = FakeLanguageClient.instances.at(-1)! as unknown as { serverOptions: { args: string[]; options?: unknown } };
  assert.equal(signedOut.serverOptions.options, undefined);
  assert.deepEqual(signedOut.serverOptions.args.slice(2), ["--token-file", "/home/me/.iquest-token"]);
});

test("signing out with no other token ends the team connection and says how to reconnect", async () => {
  const secrets = new Map([["iquest.teamToken", "iq_stored"]]);
  vscodeStub.settings.set("iquest.team.url", "tls://team.example:7070");
  const inherited = process.env.IQUEST_TOKEN;
  delete process.env.IQUEST_TOKEN;
  try {
    await activate(context(secrets) as any);
    const [client] = FakeLanguageClient.instances;
    assert.equal(client.started, true);
    await vscodeStub.commands.executeCommand("iquest.vscode.signOut");
    // Stopped, not restarted into a refused connection.
    assert.equal(client.started, false);
    assert.equal(FakeLanguageClient.instances.length, 1);
    assert.equal(secrets.size, 0);
    assert.match(vscodeStub.messages.at(-1) ?? "", /signed out of tls:\/\/team.example:7070.*Set team token/);
  } finally {
    if (inherited !== undefined) {
      process.env.IQUEST_TOKEN = inherited;
    }
  }
});

test("an empty token answer stores nothing and keeps the daemon running", async () => {
  const secrets = new Map<string, string>();
  vscodeStub.settings.set("iquest.team.url", "wss://team.example:7071");
  await activate(context(secrets) as any);
  vscodeStub.inputAnswer = "   ";
  await vscodeStub.commands.executeCommand("iquest.vscode.setTeamToken");
  assert.equal(secrets.size, 0);
  assert.equal(FakeLanguageClient.instances.length, 1);
});
