// The extension: launches `iquest-lsp` (or `iquest-lsp connect URL` for a team server) over
// stdio and lets vscode-languageclient (10+: inline completions built in) do the protocol.
// Everything else is a small module of its own: settings, commands, status, explanations.
import * as vscode from "vscode";
import {
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  State,
  type StaticFeature,
  TransportKind,
} from "vscode-languageclient/node";

import { type Daemon, registerCommands } from "./commands";
import * as protocol from "./protocol";
import { type ExplanationPayload, showExplanation } from "./explanations";
import { launchCommand, toServerSettings } from "./settings";
import { type DaemonStats, StatusModel } from "./status";

let client: LanguageClient | undefined;

function readSetting(key: string): unknown {
  return vscode.workspace.getConfiguration("iquest").get(key);
}

// Tells the daemon this client renders `iquest/explanation` itself (no document is opened).
const explanationsFeature: StaticFeature = {
  fillClientCapabilities(capabilities) {
    const experimental = (capabilities.experimental ?? {}) as Record<string, unknown>;
    capabilities.experimental = { ...experimental, [protocol.CAPABILITY]: { explanations: true } };
  },
  initialize() {},
  getState() {
    return { kind: "static" };
  },
  clear() {},
};

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("iquest", { log: true });
  const status = new StatusModel(vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100));
  let lastStats = 0;

  const refreshStats = async (): Promise<void> => {
    const now = Date.now();
    if (!client || now - lastStats < 1000) {
      return;
    }
    lastStats = now;
    try {
      status.update((await client.sendRequest(protocol.STATS, null)) as DaemonStats);
    } catch (error) {
      output.appendLine(`iquest/stats failed: ${String(error)}`);
    }
  };

  const start = async (): Promise<void> => {
    const launch = launchCommand({
      command: String(readSetting("server.command") || "iquest-lsp"),
      args: (readSetting("server.args") as string[] | undefined) ?? [],
      teamUrl: String(readSetting("team.url") ?? ""),
      tokenFile: String(readSetting("team.tokenFile") ?? ""),
    });
    const serverOptions: ServerOptions = {
      command: launch.command,
      args: launch.args,
      transport: TransportKind.stdio,
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      initializationOptions: { iquest: toServerSettings(readSetting) },
      outputChannel: output,
      synchronize: { configurationSection: "iquest" },
      middleware: {
        workspace: {
          // The daemon asks for section "iquest": answer in its own (snake_case) terms.
          configuration: (params) =>
            params.items.map((item) => (item.section === "iquest" ? toServerSettings(readSetting) : null)),
        },
        provideInlineCompletionItems: async (document, position, inlineContext, token, next) => {
          status.requestStarted();
          try {
            return await next(document, position, inlineContext, token);
          } finally {
            status.requestEnded();
            void refreshStats();
          }
        },
      },
    };
    client = new LanguageClient("iquest", "iquest", serverOptions, clientOptions);
    client.registerFeature(explanationsFeature);
    client.onDidChangeState((event) => {
      if (event.newState === State.Stopped) {
        status.stopped();
      }
    });
    await client.start();
    client.onNotification(protocol.EXPLANATION, (payload: ExplanationPayload) => {
      void showExplanation(payload);
    });
    lastStats = 0;
    await refreshStats();
  };

  const daemon = (): Daemon | undefined =>
    client && {
      executeCommand: (command, args) => client!.sendRequest("workspace/executeCommand", { command, arguments: args }),
      notify: (method, params) => client!.sendNotification(method, params),
    };

  context.subscriptions.push(
    output,
    ...registerCommands(daemon),
    vscode.commands.registerCommand("iquest.vscode.restart", async () => {
      await client?.stop();
      await start();
    }),
    vscode.commands.registerCommand("iquest.vscode.showLog", () => output.show()),
    { dispose: () => void client?.stop() },
  );
  try {
    await start();
  } catch (error) {
    status.stopped();
    void vscode.window.showErrorMessage(
      `iquest: could not start the daemon (${String(error)}). Is iquest-lsp installed and on PATH? See the setting iquest.server.command.`,
    );
  }
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
