import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { FakeDocument, vscodeStub } from "./stubs";
import { registerCommands } from "../src/commands";

function recordingDaemon() {
  const calls: Array<[string, unknown]> = [];
  const notes: Array<[string, unknown]> = [];
  return {
    calls,
    notes,
    daemon: {
      async executeCommand(command: string, args: unknown[]) {
        calls.push([command, args]);
        return { ok: true };
      },
      async notify(method: string, params: unknown) {
        notes.push([method, params]);
      },
    },
  };
}

function editorWith(selection: [number, number, number, number] | null, text = "def f():\n    return 1\n") {
  const [sl, sc, el, ec] = selection ?? [0, 0, 0, 0];
  vscodeStub.window.activeTextEditor = {
    document: new FakeDocument(text),
    selection: {
      isEmpty: selection === null,
      start: { line: sl, character: sc },
      end: { line: el, character: ec },
    },
  };
}

beforeEach(() => vscodeStub.reset());

test("explain sends the selection to the daemon's iquest.explain", async () => {
  const { calls, daemon } = recordingDaemon();
  registerCommands(() => daemon);
  editorWith([0, 0, 1, 12]);
  const answer = await vscodeStub.commands.executeCommand("iquest.vscode.explain");
  assert.deepEqual(answer, { ok: true });
  assert.deepEqual(calls, [
    [
      "iquest.explain",
      [{ uri: "file:///proj/app.py", range: { start: { line: 0, character: 0 }, end: { line: 1, character: 12 } } }],
    ],
  ]);
});

test("no selection means the whole file; fix and find bugs go to their own commands", async () => {
  const { calls, daemon } = recordingDaemon();
  registerCommands(() => daemon);
  editorWith(null);
  await vscodeStub.commands.executeCommand("iquest.vscode.findBugs");
  editorWith([1, 4, 1, 12]);
  await vscodeStub.commands.executeCommand("iquest.vscode.fix");
  assert.deepEqual(calls[0], ["iquest.findBugs", [{ uri: "file:///proj/app.py" }]]);
  assert.equal(calls[1][0], "iquest.fix");
});

test("ask asks for the question first; cancelling the box sends nothing", async () => {
  const { calls, daemon } = recordingDaemon();
  registerCommands(() => daemon);
  editorWith(null);
  vscodeStub.inputAnswer = undefined;
  await vscodeStub.commands.executeCommand("iquest.vscode.ask");
  assert.equal(calls.length, 0);
  vscodeStub.inputAnswer = "What if the list is empty?";
  await vscodeStub.commands.executeCommand("iquest.vscode.ask");
  assert.deepEqual(calls, [["iquest.ask", [{ uri: "file:///proj/app.py", question: "What if the list is empty?" }]]]);
});

test("without an editor or a daemon, the user is told and nothing is sent", async () => {
  const { calls, daemon } = recordingDaemon();
  registerCommands(() => undefined);
  editorWith(null);
  await vscodeStub.commands.executeCommand("iquest.vscode.explain");
  vscodeStub.reset();
  registerCommands(() => daemon);
  await vscodeStub.commands.executeCommand("iquest.vscode.explain");
  assert.equal(calls.length, 0);
  assert.equal(vscodeStub.messages.length, 1);
});

test("accept next word runs VS Code's own command and reports what was taken", async () => {
  const { notes, daemon } = recordingDaemon();
  registerCommands(() => daemon);
  editorWith(null, "x = ");
  const editor = vscodeStub.window.activeTextEditor!;
  vscodeStub.builtins.set("editor.action.inlineSuggest.acceptNextWord", () => {
    editor.document.text += "compute";
  });
  await vscodeStub.commands.executeCommand("iquest.vscode.acceptNextWord");
  assert.deepEqual(notes, [["iquest/didPartiallyAccept", { uri: "file:///proj/app.py", acceptedLength: 7 }]]);
  vscodeStub.builtins.set("editor.action.inlineSuggest.acceptNextWord", () => undefined);
  await vscodeStub.commands.executeCommand("iquest.vscode.acceptNextWord");
  assert.equal(notes.length, 1, "nothing taken, nothing reported");
});

test("accept next line runs VS Code's own command and reports what was taken", async () => {
  const { notes, daemon } = recordingDaemon();
  registerCommands(() => daemon);
  editorWith(null, "def f(x):\n    ");
  const editor = vscodeStub.window.activeTextEditor!;
  vscodeStub.builtins.set("editor.action.inlineSuggest.acceptNextLine", () => {
    editor.document.text += "total = x + 1\n";
  });
  await vscodeStub.commands.executeCommand("iquest.vscode.acceptNextLine");
  assert.deepEqual(notes, [["iquest/didPartiallyAccept", { uri: "file:///proj/app.py", acceptedLength: 14 }]]);
  assert.ok(vscodeStub.executed.some(([id]) => id === "editor.action.inlineSuggest.acceptNextLine"));
});
