// code-server 4.100.3's postinstall downloads ripgrep from GitHub, which is unreachable here.
// It first looks in its cache folder: a tar.gz holding Debian's /usr/bin/rg as `rg` satisfies it.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cache = join(tmpdir(), "vscode-ripgrep-cache-1.15.11");
const archive = join(cache, "ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz");
if (!existsSync(archive)) {
  if (!existsSync("/usr/bin/rg")) {
    console.error("ripgrep-cache: /usr/bin/rg is missing: apt-get install ripgrep");
    process.exit(1);
  }
  mkdirSync(cache, { recursive: true });
  const staging = mkdtempSync(join(tmpdir(), "rg-"));
  copyFileSync("/usr/bin/rg", join(staging, "rg"));
  execFileSync("tar", ["-czf", archive, "-C", staging, "rg"]);
}
