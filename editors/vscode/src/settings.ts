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
  // The team token from VS Code's secret storage ("iquest: Set team token"), if any.
  storedToken?: string;
}

export interface Launch {
  command: string;
  args: string[];
  // Only for the bridge, only when a token is stored: the environment carries it.
  env?: Record<string, string>;
}

// The command line: the daemon itself, or the bridge to a team server. The token never goes
// on the command line (other users can read argv) nor in settings: a stored token reaches the
// bridge as $IQUEST_TOKEN (it then wins over a token file), else the bridge reads the file or
// the variable it inherits.
export function launchCommand(launch: LaunchSettings, environment: NodeJS.ProcessEnv = {}): Launch {
  if (launch.teamUrl.trim()) {
    const args = ["connect", launch.teamUrl.trim()];
    const token = launch.storedToken?.trim();
    if (token) {
      const env: Record<string, string> = {};
      for (const [key, value] of Object.entries(environment)) {
        if (value !== undefined) {
          env[key] = value;
        }
      }
      env.IQUEST_TOKEN = token;
      return { command: launch.command, args, env };
    }
    if (launch.tokenFile.trim()) {
      args.push("--token-file", launch.tokenFile.trim());
    }
    return { command: launch.command, args };
  }
  return { command: launch.command, args: [...launch.args] };
}
