// The editor's commands: each collects the file and selection and asks the daemon to run its
// command (iquest.explain, iquest.fix, iquest.findBugs, iquest.ask) through
// workspace/executeCommand. The daemon reports progress, applies fixes and publishes findings.
import * as vscode from "vscode";
import * as protocol from "./protocol";

export interface Daemon {
  executeCommand(command: string, args: unknown[]): Promise<unknown>;
  notify(method: string, params: unknown): Promise<void>;
}

export interface ActionArguments {
  uri: string;
  range?: { start: { line: number; character: number }; end: { line: number; character: number } };
  question?: string;
}

// The selection, or none (the whole file) when nothing is selected.
export function actionArguments(editor: vscode.TextEditor): ActionArguments {
  const args: ActionArguments = { uri: editor.document.uri.toString() };
  const selection = editor.selection;
  if (selection && !selection.isEmpty) {
    args.range = {
      start: { line: selection.start.line, character: selection.start.character },
      end: { line: selection.end.line, character: selection.end.character },
    };
  }
  return args;
}

export const ACTIONS: ReadonlyArray<[string, string]> = [
  ["iquest.vscode.explain", protocol.EXPLAIN],
  ["iquest.vscode.fix", protocol.FIX],
  ["iquest.vscode.findBugs", protocol.FIND_BUGS],
  ["iquest.vscode.ask", protocol.ASK],
];

export const PARTIAL_ACCEPTS: ReadonlyArray<[string, string]> = [
  ["iquest.vscode.acceptNextWord", "editor.action.inlineSuggest.acceptNextWord"],
  ["iquest.vscode.acceptNextLine", "editor.action.inlineSuggest.acceptNextLine"],
];

async function partialAccept(builtin: string, daemon: () => Daemon | undefined): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const before = editor?.document.getText().length ?? 0;
  await vscode.commands.executeCommand(builtin);
  const client = daemon();
  if (!editor || !client) {
    return;
  }
  const taken = editor.document.getText().length - before;
  if (taken > 0) {
    const params: protocol.PartialAcceptParams = {
      uri: editor.document.uri.toString(),
      acceptedLength: taken,
    };
    await client.notify(protocol.PARTIAL_ACCEPT, params);
  }
}

export function registerCommands(daemon: () => Daemon | undefined): vscode.Disposable[] {
  const disposables = ACTIONS.map(([id, serverCommand]) =>
    vscode.commands.registerCommand(id, async () => {
      const editor = vscode.window.activeTextEditor;
      const client = daemon();
      if (!editor || !client) {
        void vscode.window.showWarningMessage("iquest: open a file first (and let the daemon start)");
        return undefined;
      }
      const args = actionArguments(editor);
      if (serverCommand === protocol.ASK) {
        const question = await vscode.window.showInputBox({
          prompt: "Ask about the selection (or the file)",
          placeHolder: "What does this do with an empty list?",
        });
        if (!question) {
          return undefined;
        }
        args.question = question;
      }
      return client.executeCommand(serverCommand, [args]);
    }),
  );
  // Partial accepts: VS Code's own commands, then the daemon is told what was taken (they
  // reach no LSP request).
  for (const [id, builtin] of PARTIAL_ACCEPTS) {
    disposables.push(vscode.commands.registerCommand(id, () => partialAccept(builtin, daemon)));
  }
  return disposables;
}
