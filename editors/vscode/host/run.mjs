// Runs the extension's in-host suite (out/test-host/suite.js) inside a real VS Code: starts
// code-server (VS Code's own server and workbench) with the extension loaded from its source
// folder, opens the workbench in Debian's chromium (driven by playwright-core) with the
// `payload` that makes the extension host run the suite, answers the suite's screenshot
// requests, prints each outcome and a closing "N passed, N failed" line, and exits 1 on any
// failure. Everything it started (code-server's process group: extension hosts, daemons) is
// stopped at the end.
//
//   node run.mjs --workspace DIR [--screenshots DIR] [--timeout-s 600]
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const extension = resolve(here, "..");
const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, word, i, all) => (word.startsWith("--") ? [...pairs, [word.slice(2), all[i + 1]]] : pairs), []),
);
if (!args.workspace) {
  console.error("run.mjs: --workspace DIR is required (a folder holding .iquest-host/setup.json)");
  process.exit(2);
}
const workspace = resolve(args.workspace);
const control = join(workspace, ".iquest-host");
const screenshots = args.screenshots ? resolve(args.screenshots) : control;
const timeoutMs = Number(args["timeout-s"] ?? 600) * 1000;
const suite = join(extension, "out", "test-host", "suite.js");
for (const [what, path] of [["the compiled suite (npm run compile)", suite], ["setup.json", join(control, "setup.json")], ["chromium", "/usr/bin/chromium"]]) {
  if (!existsSync(path)) {
    console.error(`run.mjs: ${what} is missing: ${path}`);
    process.exit(2);
  }
}

function freePort() {
  return new Promise((done) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const port = await freePort();
const state = mkdtempSync(join(tmpdir(), "iquest-code-server-"));
const log = openSync(join(state, "code-server.log"), "w");
const server = spawn(
  join(here, "node_modules", ".bin", "code-server"),
  [
    "--auth", "none",
    "--bind-addr", `127.0.0.1:${port}`,
    "--disable-telemetry",
    "--disable-update-check",
    "--disable-workspace-trust",
    "--user-data-dir", join(state, "user-data"),
    "--extensions-dir", join(state, "extensions"),
    workspace,
  ],
  {
    detached: true, // its own process group: extension hosts and daemons are stopped with it
    stdio: ["ignore", log, log],
    env: {
      ...process.env,
      // Nothing from Microsoft's gallery (unreachable here, and nothing to install).
      EXTENSIONS_GALLERY: '{"serviceUrl":"http://127.0.0.1:9/gallery","itemUrl":"http://127.0.0.1:9/items"}',
    },
  },
);

function stopAll() {
  try {
    process.kill(-server.pid, "SIGKILL");
  } catch {}
}
process.on("exit", stopAll);

let browser;
let outcomes = [];
let failure = "";
try {
  const started = Date.now();
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
    } catch {}
    if (Date.now() - started > 60_000) throw new Error(`code-server did not start; see ${state}/code-server.log`);
    await sleep(200);
  }
  const remote = (path) => `vscode-remote://127.0.0.1:${port}${path}`;
  const payload = [
    ["extensionDevelopmentPath", remote(extension)],
    ["extensionTestsPath", remote(suite)],
  ];
  const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(url);
  const deadline = Date.now() + timeoutMs;
  const result = join(control, "result.json");
  while (!existsSync(result)) {
    if (Date.now() > deadline) throw new Error(`no result after ${timeoutMs / 1000} s`);
    for (const name of readdirSync(control)) {
      if (name.endsWith(".request") && !existsSync(join(control, `${name}.done`))) {
        mkdirSync(screenshots, { recursive: true });
        const shot = name.replace(/^screenshot-/, "").replace(/\.request$/, ".png");
        await page.screenshot({ path: join(screenshots, shot) });
        writeFileSync(join(control, `${name}.done`), "");
        console.log(`screenshot: ${join(screenshots, shot)}`);
      }
    }
    await sleep(200);
  }
  outcomes = JSON.parse(readFileSync(result, "utf8"));
} catch (error) {
  failure = String(error?.stack ?? error);
  const progress = join(control, "progress.json");
  if (existsSync(progress)) outcomes = JSON.parse(readFileSync(progress, "utf8"));
} finally {
  await browser?.close().catch(() => {});
  stopAll();
}
for (const outcome of outcomes) {
  console.log(`${outcome.ok ? "PASS" : "FAIL"} ${outcome.name} (${(outcome.ms / 1000).toFixed(1)} s)`);
  if (!outcome.ok) console.log(`  ${outcome.error.split("\n").join("\n  ")}`);
}
if (failure) console.log(`ERROR ${failure}\n  code-server's log: ${join(state, "code-server.log")}`);
const passed = outcomes.filter((o) => o.ok).length;
const failed = outcomes.length - passed + (failure ? 1 : 0);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
