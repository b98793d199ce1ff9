// VS Code settings (camelCase, under "iquest") -> the daemon's settings (snake_case tables).
// Pure: tested without VS Code.

export type SettingsReader = (key: string) => unknown;

// Each VS Code key and where the daemon reads it. Empty strings and nulls mean "not set here":
// the daemon's own configuration file then decides.
export const SETTING_MAP: ReadonlyArray<[string, string, string]> = [
  ["instruct.baseUrl", "instruct", "base_url"],
  ["instruct.model", "instruct", "model"],
  ["reasoning.baseUrl", "reasoning", "base_url"],
  ["reasoning.model", "reasoning", "model"],
  ["completion.maxTokens", "completion", "max_tokens"],
  ["completion.temperature", "completion", "temperature"],
  ["completion.debounceMs", "completion", "debounce_ms"],
  ["completion.multiline", "completion", "multiline"],
  ["actions.showThinking", "actions", "show_thinking"],
];

export type ServerSettings = Record<string, Record<string, unknown>>;

export function toServerSettings(read: SettingsReader): ServerSettings {
  const out: ServerSettings = {};
  for (const [key, table, field] of SETTING_MAP) {
    const value = read(key);
    if (value === undefined || value === null || value === "") {
      continue;
    }
    (out[table] ??= {})[field] = value;
  }
  return out;
}

export interface LaunchSettings {
  command: string;
  args: string[];
  teamUrl: string;
  tokenFile: string;
}

// The command line: the daemon itself, or the bridge to a team server. The token never goes
// on the command line (other users can read argv): the bridge reads $IQUEST_TOKEN or a file.
export function launchCommand(launch: LaunchSettings): { command: string; args: string[] } {
  if (launch.teamUrl.trim()) {
    const args = ["connect", launch.teamUrl.trim()];
    if (launch.tokenFile.trim()) {
      args.push("--token-file", launch.tokenFile.trim());
    }
    return { command: launch.command, args };
  }
  return { command: launch.command, args: [...launch.args] };
}
