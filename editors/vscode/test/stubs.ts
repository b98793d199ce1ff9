// Stand-ins for `vscode` (VS Code cannot be downloaded here) and for vscode-languageclient's
// LanguageClient, installed by module name before the extension's modules load.
import Module = require("node:module");

type Handler = (...args: unknown[]) => unknown;

export class FakeDocument {
  constructor(
    public text: string,
    public uri = { toString: () => "file:///proj/app.py", fsPath: "/proj/app.py" },
    public languageId = "python",
  ) {}
  getText(): string {
    return this.text;
  }
}

export interface FakeEditor {
  document: FakeDocument;
  selection: {
    isEmpty: boolean;
    start: { line: number; character: number };
    end: { line: number; character: number };
  };
}

export const vscodeStub = {
  registered: new Map<string, Handler>(),
  executed: [] as Array<[string, unknown[]]>,
  builtins: new Map<string, Handler>(),
  opened: [] as Array<{ language?: string; content?: string }>,
  messages: [] as string[],
  inputAnswer: undefined as string | undefined,
  inputOptions: [] as unknown[],
  logged: [] as string[],
  settings: new Map<string, unknown>(),
  statusItems: [] as Array<{ text: string; tooltip?: unknown; shown: boolean; show(): void }>,
  reset(): void {
    this.registered.clear();
    this.executed.length = 0;
    this.builtins.clear();
    this.opened.length = 0;
    this.messages.length = 0;
    this.inputAnswer = undefined;
    this.inputOptions.length = 0;
    this.logged.length = 0;
    this.settings.clear();
    this.statusItems.length = 0;
    this.window.activeTextEditor = undefined;
  },
  StatusBarAlignment: { Left: 1, Right: 2 },
  commands: {
    registerCommand(id: string, handler: Handler) {
      if (vscodeStub.registered.has(id)) {
        throw new Error(`command '${id}' already exists`);
      }
      vscodeStub.registered.set(id, handler);
      return { dispose: () => vscodeStub.registered.delete(id) };
    },
    async executeCommand(id: string, ...args: unknown[]) {
      vscodeStub.executed.push([id, args]);
      const handler = vscodeStub.registered.get(id) ?? vscodeStub.builtins.get(id);
      return handler ? handler(...args) : undefined;
    },
  },
  window: {
    activeTextEditor: undefined as FakeEditor | undefined,
    async showInputBox(options?: unknown) {
      vscodeStub.inputOptions.push(options);
      return vscodeStub.inputAnswer;
    },
    async showWarningMessage(message: string) {
      vscodeStub.messages.push(message);
      return undefined;
    },
    async showInformationMessage(message: string) {
      vscodeStub.messages.push(message);
      return undefined;
    },
    async showErrorMessage(message: string) {
      vscodeStub.messages.push(message);
      return undefined;
    },
    createStatusBarItem() {
      const item = {
        text: "",
        tooltip: undefined as unknown,
        shown: false,
        show() {
          item.shown = true;
        },
        dispose() {},
      };
      vscodeStub.statusItems.push(item);
      return item;
    },
    createOutputChannel() {
      return {
        appendLine(line: string) {
          vscodeStub.logged.push(line);
        },
        show() {},
        dispose() {},
      };
    },
  },
  workspace: {
    async openTextDocument(options: { language?: string; content?: string }) {
      vscodeStub.opened.push(options);
      return new FakeDocument(options.content ?? "", {
        toString: () => `untitled:Untitled-${vscodeStub.opened.length}`,
        fsPath: "",
      });
    },
    getConfiguration(section: string) {
      return {
        get: (key: string) => vscodeStub.settings.get(`${section}.${key}`),
      };
    },
  },
};

// The LanguageClient as the extension uses it: records its options, answers requests from a
// table, keeps notification handlers so a test can deliver one.
export class FakeLanguageClient {
  static instances: FakeLanguageClient[] = [];
  features: Array<{ fillClientCapabilities(c: Record<string, unknown>): void }> = [];
  handlers = new Map<string, Handler>();
  requests: Array<[string, unknown]> = [];
  notifications: Array<[string, unknown]> = [];
  answers = new Map<string, unknown>();
  started = false;
  constructor(
    public id: string,
    public name: string,
    public serverOptions: { command: string; args: string[] },
    public clientOptions: Record<string, any>,
  ) {
    FakeLanguageClient.instances.push(this);
    this.answers.set("iquest/stats", { model: "coder-7b", last_latency_ms: 212.4, backend_down: false });
  }
  registerFeature(feature: { fillClientCapabilities(c: Record<string, unknown>): void }) {
    this.features.push(feature);
  }
  onDidChangeState() {
    return { dispose() {} };
  }
  onNotification(method: string, handler: Handler) {
    this.handlers.set(method, handler);
    return { dispose() {} };
  }
  async start() {
    this.started = true;
  }
  async stop() {
    this.started = false;
  }
  async sendRequest(method: string, params: unknown) {
    this.requests.push([method, params]);
    return this.answers.get(method);
  }
  async sendNotification(method: string, params: unknown) {
    this.notifications.push([method, params]);
  }
}

const languageClientStub = {
  LanguageClient: FakeLanguageClient,
  State: { Stopped: 1, Starting: 3, Running: 2 },
  TransportKind: { stdio: 0, ipc: 1, pipe: 2, socket: 3 },
};

const stubs: Record<string, unknown> = {
  vscode: vscodeStub,
  "vscode-languageclient/node": languageClientStub,
};
const original = (Module as any)._load;
(Module as any)._load = function (request: string, ...rest: unknown[]) {
  return request in stubs ? stubs[request] : original.call(this, request, ...rest);
};
