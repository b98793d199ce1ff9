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

// What activate returns (vscode.extensions.getExtension(...).exports): the state the user sees,
// for the in-host suite (test-host/) and for other extensions.
export interface IquestApi {
  status: StatusModel;
  // The suggestions the daemon gave the last inline request (what VS Code shows as ghost text).
  lastSuggestions(): readonly string[];
  // Explanations opened so far.
  explanations(): readonly vscode.TextDocument[];
  running(): boolean;
  // The daemon's figures (iquest/stats): what it was told the user took, among others.
  stats(): Promise<DaemonStats | undefined>;
}

function insertTexts(result: unknown): string[] {
  const items = Array.isArray(result) ? result : (result as { items?: unknown[] } | null)?.items ?? [];
  return items.map((item) => {
    const text = (item as { insertText?: unknown }).insertText;
    return typeof text === "string" ? text : ((text as { value?: string } | undefined)?.value ?? "");
  });
}

export async function activate(context: vscode.ExtensionContext): Promise<IquestApi> {
  let lastSuggestions: string[] = [];
  const explanations: vscode.TextDocument[] = [];
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
            const result = await next(document, position, inlineContext, token);
            lastSuggestions = insertTexts(result);
            return result;
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
    client.onNotification(protocol.EXPLANATION, async (payload: ExplanationPayload) => {
      explanations.push(await showExplanation(payload));
    });
    lastStats = 0;
    await refreshStats();
  };

  // Starting can fail (no daemon on PATH, a team server that refuses the token): the user is told
  // in one message and the status item says stopped; the command that started it does not fail.
  const startOrSay = async (): Promise<void> => {
    try {
      await start();
    } catch (error) {
      status.stopped();
      void vscode.window.showErrorMessage(
        `iquest: could not start the daemon (${String(error)}). Is iquest-lsp installed and on PATH? See the setting iquest.server.command.`,
      );
    }
  };

  const restart = async (): Promise<void> => {
    await client?.stop();
    await startOrSay();
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
    // A token given as the argument (a keybinding's or a script's) skips the prompt.
    vscode.commands.registerCommand("iquest.vscode.setTeamToken", async (given?: unknown) => {
      const token =
        typeof given === "string"
          ? given
          : await vscode.window.showInputBox({
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
      const teamUrl = String(readSetting("team.url") ?? "").trim();
      const otherToken = String(readSetting("team.tokenFile") ?? "").trim() || process.env.IQUEST_TOKEN;
      if (teamUrl && !otherToken) {
        // Nothing left to connect with: the connection ends here, not in a refused start.
        await client?.stop();
        client = undefined;
        status.stopped();
        void vscode.window.showInformationMessage(
          `iquest: signed out of ${teamUrl}. Run "iquest: Set team token" to connect again.`,
        );
        return;
      }
      await restart();
    }),
    { dispose: () => void client?.stop() },
  );
  await startOrSay();
  return {
    status,
    lastSuggestions: () => lastSuggestions,
    explanations: () => explanations,
    running: () => client?.state === State.Running,
    stats: async () => (client ? ((await client.sendRequest(protocol.STATS, null)) as DaemonStats) : undefined),
  };
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
