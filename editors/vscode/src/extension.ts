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

// Where the team token lives: VS Code's SecretStorage (the OS keychain), never settings.
export const TOKEN_SECRET = "iquest.teamToken";

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
    const teamUrl = String(readSetting("team.url") ?? "");
    const launch = launchCommand(
      {
        command: String(readSetting("server.command") || "iquest-lsp"),
        args: (readSetting("server.args") as string[] | undefined) ?? [],
        teamUrl,
        tokenFile: String(readSetting("team.tokenFile") ?? ""),
        storedToken: teamUrl.trim() ? await context.secrets.get(TOKEN_SECRET) : undefined,
      },
      process.env,
    );
    const serverOptions: ServerOptions = {
      command: launch.command,
      args: launch.args,
      transport: TransportKind.stdio,
      ...(launch.env ? { options: { env: launch.env } } : {}),
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

  const restart = async (): Promise<void> => {
    await client?.stop();
    await start();
  };

  const daemon = (): Daemon | undefined =>
    client && {
      executeCommand: (command, args) => client!.sendRequest("workspace/executeCommand", { command, arguments: args }),
      notify: (method, params) => client!.sendNotification(method, params),
    };

  context.subscriptions.push(
    output,
    ...registerCommands(daemon),
    vscode.commands.registerCommand("iquest.vscode.restart", restart),
    vscode.commands.registerCommand("iquest.vscode.showLog", () => output.show()),
    vscode.commands.registerCommand("iquest.vscode.setTeamToken", async () => {
      const token = await vscode.window.showInputBox({
        prompt: "Your iquest team token (from `iquest-lsp token add`); kept in VS Code's secret storage",
        password: true,
        ignoreFocusOut: true,
      });
      if (!token?.trim()) {
        return;
      }
      await context.secrets.store(TOKEN_SECRET, token.trim());
      await restart();
    }),
    vscode.commands.registerCommand("iquest.vscode.signOut", async () => {
      await context.secrets.delete(TOKEN_SECRET);
      await restart();
    }),
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
