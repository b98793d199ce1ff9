// The in-host suite: runs inside a real VS Code extension host (code-server's), with the
// extension loaded from its source folder and a real daemon against a real vLLM. Started by
// host/run.mjs through the workbench's `extensionTestsPath`; the workspace's .iquest-host/
// folder holds what the driver set up (setup.json) and receives the results (result.json).
// Each test asserts on what the user sees (ghost text, status) or what the document holds.
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";

import type { IquestApi } from "../src/extension";

interface Setup {
  teamUrl: string;
  teamToken: string;
  teamPid: number;
  deadUrl: string;
}

interface Outcome {
  name: string;
  ok: boolean;
  error?: string;
  ms: number;
}

const EXTENSION_ID = "iquest.iquest-lsp";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until<T>(what: string, probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  let lastError = "";
  for (;;) {
    try {
      const value = await probe();
      if (value) {
        return value;
      }
    } catch (error) {
      lastError = ` (last error: ${String(error)})`;
    }
    if (Date.now() > deadline) {
      throw new Error(`not within ${ms / 1000} s: ${what}${lastError}`);
    }
    await sleep(100);
  }
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) {
    throw new Error(message);
  }
}

class Suite {
  readonly outcomes: Outcome[] = [];
  constructor(private readonly control: string) {}

  async test(name: string, body: () => Promise<void>): Promise<void> {
    const started = Date.now();
    try {
      await body();
      this.outcomes.push({ name, ok: true, ms: Date.now() - started });
    } catch (error) {
      const text = error instanceof Error ? `${error.message}\n${error.stack ?? ""}` : String(error);
      this.outcomes.push({ name, ok: false, error: text, ms: Date.now() - started });
    }
    this.write("progress.json");
  }

  write(file: string): void {
    fs.writeFileSync(path.join(this.control, file), JSON.stringify(this.outcomes, null, 2));
  }

  // The driver takes a screenshot of the workbench as it is now, then answers.
  async screenshot(name: string): Promise<void> {
    const request = path.join(this.control, `screenshot-${name}.request`);
    fs.writeFileSync(request, "");
    await until("the driver's screenshot", () => fs.existsSync(`${request}.done`), 30_000);
  }
}

async function open(folder: string, name: string): Promise<vscode.TextEditor> {
  const document = await vscode.workspace.openTextDocument(vscode.Uri.file(path.join(folder, name)));
  return vscode.window.showTextDocument(document, { preview: false });
}

function endOfLine(editor: vscode.TextEditor, line: number): vscode.Position {
  const position = editor.document.lineAt(line).range.end;
  editor.selection = new vscode.Selection(position, position);
  return position;
}

// Triggers VS Code's inline suggestion at the cursor and waits for the daemon's answer (what the
// extension's provider returned, which VS Code shows as ghost text).
async function suggest(api: IquestApi): Promise<readonly string[]> {
  const before = api.lastSuggestions();
  for (let attempt = 0; attempt < 5; attempt++) {
    await vscode.commands.executeCommand("editor.action.inlineSuggest.trigger");
    try {
      return await until(
        "an inline suggestion",
        () => {
          const now = api.lastSuggestions();
          return now !== before && now.some((t) => t.trim()) && now;
        },
        20_000,
      );
    } catch {
      // Asked again: VS Code drops a trigger that lands while the editor is still settling.
    }
  }
  throw new Error("no inline suggestion after 5 triggers");
}

// Types at the cursor as the user does (VS Code asks for a suggestion after a keystroke; a
// trigger at an unchanged position may be answered from what VS Code already holds).
async function type(text: string): Promise<void> {
  await vscode.commands.executeCommand("type", { text });
}

async function restore(editor: vscode.TextEditor, text: string): Promise<void> {
  for (let i = 0; i < 50 && editor.document.getText() !== text; i++) {
    await vscode.commands.executeCommand("undo");
  }
  check(editor.document.getText() === text, "the document did not come back by undo");
}

async function settingUpdate(key: string, value: unknown): Promise<void> {
  await vscode.workspace.getConfiguration("iquest").update(key, value, vscode.ConfigurationTarget.Workspace);
}

export async function run(): Promise<void> {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  check(folder, "no workspace folder");
  const control = path.join(folder, ".iquest-host");
  const setup = JSON.parse(fs.readFileSync(path.join(control, "setup.json"), "utf8")) as Setup;
  const suite = new Suite(control);
  const extension = vscode.extensions.getExtension<IquestApi>(EXTENSION_ID);
  check(extension, `${EXTENSION_ID} is not loaded`);
  let api!: IquestApi;

  await suite.test("activates on a Python file under a folder with a space and an accent", async () => {
    check(/ /.test(folder) && /é/.test(folder), `the folder ${folder} has no space or accent`);
    await open(folder, "shapes.py");
    api = await until("activation", async () => (extension.isActive ? extension.exports : await extension.activate()));
    await until("the daemon running", () => api.running());
    await until("the status item ready", () => api.status.state === "ready" || api.status.state === "starting");
  });

  await suite.test("an inline suggestion appears and Tab inserts exactly the daemon's answer", async () => {
    const editor = await open(folder, "shapes.py");
    const at = endOfLine(editor, 3);
    const before = editor.document.getText();
    const [text] = await suggest(api);
    await sleep(500); // rendered
    await suite.screenshot("ghost-text");
    await vscode.commands.executeCommand("editor.action.inlineSuggest.commit");
    const offset = editor.document.offsetAt(at);
    const expected = before.slice(0, offset) + text + before.slice(offset);
    await until(`the suggestion ${JSON.stringify(text)} inserted`, () => editor.document.getText() === expected, 10_000);
    const stats = await until("the accept reported", async () => ((await api.stats())?.accepted ?? 0) >= 1 && api.stats(), 10_000);
    check((stats?.accepted ?? 0) >= 1, "the daemon was not told of the accept");
    await vscode.commands.executeCommand("undo");
  });

  await suite.test("a TypeScript file under the same folder gets suggestions", async () => {
    const editor = await open(folder, "shapes.ts");
    endOfLine(editor, 2);
    const [text] = await suggest(api);
    check(text.length > 0, "an empty suggestion");
    check(editor.document.languageId === "typescript", editor.document.languageId);
  });

  await suite.test("accept word and accept line insert their parts and are reported", async () => {
    const editor = await open(folder, "shapes.py");
    const at = endOfLine(editor, 3);
    const offset = editor.document.offsetAt(at);
    const before = editor.document.getText();
    const reported = (await api.stats())?.partially_accepted ?? 0;
    const [text] = await suggest(api);
    const inserted = (): string => editor.document.getText().slice(offset, offset + editor.document.getText().length - before.length);
    await vscode.commands.executeCommand("iquest.vscode.acceptNextWord");
    const word = await until("a word taken", () => inserted());
    check(text.startsWith(word) && word.length < text.length || word === text, `took ${JSON.stringify(word)} of ${JSON.stringify(text)}`);
    await until("the word reported", async () => ((await api.stats())?.partially_accepted ?? 0) === reported + 1, 10_000);
    if (word !== text) {
      // The rest is still shown: its next line.
      await vscode.commands.executeCommand("iquest.vscode.acceptNextLine");
      const line = await until("a line taken", () => inserted().length > word.length && inserted());
      check(text.startsWith(line), `took ${JSON.stringify(line)} of ${JSON.stringify(text)}`);
      await until("the line reported", async () => ((await api.stats())?.partially_accepted ?? 0) === reported + 2, 10_000);
    }
    while (editor.document.getText() !== before) {
      await vscode.commands.executeCommand("undo");
    }
  });

  await suite.test("cycling shows another candidate from one explicit request", async () => {
    const editor = await open(folder, "shapes.py");
    const at = endOfLine(editor, 3);
    const before = editor.document.getText();
    await vscode.commands.executeCommand("editor.action.inlineSuggest.trigger");
    await vscode.commands.executeCommand("editor.action.inlineSuggest.showNext");
    const candidates = await until("several candidates", () => {
      const now = api.lastSuggestions().filter((t) => t.trim());
      return now.length >= 2 && now;
    }, 60_000);
    check(new Set(candidates).size === candidates.length, "candidates repeat");
    await vscode.commands.executeCommand("editor.action.inlineSuggest.commit");
    const offset = editor.document.offsetAt(at);
    const inserted = await until("a candidate inserted", () => {
      const text = editor.document.getText();
      return text !== before && text.slice(offset, offset + text.length - before.length);
    }, 10_000);
    check(candidates.includes(inserted), `inserted ${JSON.stringify(inserted)}, not one of the candidates`);
    await vscode.commands.executeCommand("undo");
  });

  await suite.test("code actions are offered on a selection and Fix applies its edit", async () => {
    const editor = await open(folder, "notes.txt");
    const range = new vscode.Range(1, 0, 2, 0);
    editor.selection = new vscode.Selection(range.start, range.end);
    const actions = await until("code actions", async () => {
      const offered = await vscode.commands.executeCommand<vscode.CodeAction[]>(
        "vscode.executeCodeActionProvider",
        editor.document.uri,
        range,
      );
      return offered && offered.length > 0 ? offered : undefined;
    });
    const titles = actions.map((a) => a.title);
    const fix = actions.find((a) => /fix/i.test(a.title) && a.command);
    check(fix?.command, `no Fix among ${JSON.stringify(titles)}`);
    check(titles.some((t) => /explain/i.test(t)), `no Explain among ${JSON.stringify(titles)}`);
    const before = editor.document.getText();
    await vscode.commands.executeCommand(fix.command.command, ...(fix.command.arguments ?? []));
    await until("the fix applied", () => editor.document.getText() !== before, 120_000);
    const after = editor.document.getText();
    check(after.startsWith("first line stays\n") && after.endsWith("last line stays\n"), "the fix touched lines outside the selection");
    check(!after.includes("this line gets fixed"), "the selected line is unchanged");
    await vscode.commands.executeCommand("undo");
  });

  await suite.test("Explain shows its result beside the code", async () => {
    const editor = await open(folder, "shapes.py");
    editor.selection = new vscode.Selection(0, 0, 2, 0);
    const shown = api.explanations().length;
    await vscode.commands.executeCommand("iquest.vscode.explain");
    const document = await until("an explanation", () => api.explanations()[shown], 120_000);
    check(document.getText().startsWith("# Explanation: shapes.py, lines 1-"), document.getText().slice(0, 80));
    check(document.getText().split("\n").length > 2, "an empty explanation");
  });

  await suite.test("the status item says paused when the model server is down, and back", async () => {
    const editor = await open(folder, "shapes.py");
    endOfLine(editor, 3);
    const before = editor.document.getText();
    // Both endpoints: with only the instruct one down, suggestions come from the reasoning one.
    await settingUpdate("instruct.baseUrl", setup.deadUrl);
    await settingUpdate("reasoning.baseUrl", setup.deadUrl);
    try {
      await until("status down", async () => {
        await type(" ");
        await sleep(1200);
        return api.status.state === "down";
      });
    } finally {
      await settingUpdate("instruct.baseUrl", undefined);
      await settingUpdate("reasoning.baseUrl", undefined);
    }
    await until("status back", async () => {
      await type(" ");
      await sleep(1200);
      return api.status.state === "ready" || api.status.state === "busy";
    }, 90_000);
    await restore(editor, before);
  });

  await suite.test("Set team token connects to a --serve daemon through iquest-lsp connect; Sign out ends it", async () => {
    await settingUpdate("team.url", setup.teamUrl);
    await vscode.commands.executeCommand("iquest.vscode.setTeamToken", setup.teamToken);
    await until("the bridge running", () => api.running(), 60_000);
    const stats = await until("the team daemon's stats", () => api.stats(), 30_000);
    check(stats.worker_pid === setup.teamPid, `served by ${stats.worker_pid}, not the team daemon ${setup.teamPid}`);
    const editor = await open(folder, "shapes.py");
    endOfLine(editor, 3);
    const before = editor.document.getText();
    const shown = api.lastSuggestions();
    await type(" ");
    const [text] = await until("a suggestion through the team daemon", () => {
      const now = api.lastSuggestions();
      return now !== shown && now.some((t) => t.trim()) && now;
    });
    check(text.length > 0, "no suggestion through the team daemon");
    await restore(editor, before);
    const teamStats = await api.stats();
    check((teamStats?.suggestions ?? 0) >= 1 && teamStats?.worker_pid === setup.teamPid, "the suggestion did not come from the team daemon");
    await vscode.commands.executeCommand("iquest.vscode.signOut");
    // No token left: the connection ends and the status item says so.
    await until("the team connection ended", () => !api.running() && api.status.state === "stopped", 30_000);
    await settingUpdate("team.url", undefined);
  });

  suite.write("result.json");
}
