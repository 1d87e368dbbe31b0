// Builds the player page into recorder/lucid_recorder/player/web/ (shipped in the
// lucid-recorder wheel, committed so neither the wheel nor the image needs Node), or the
// node tests into .build/test/.
//
//   node build.mjs            the page: player.js (one minified bundle), index.html, player.css
//   node build.mjs --check    fail if the committed page differs from a fresh build
//   node build.mjs --tests    test/*.test.ts -> .build/test/*.test.mjs
//   node build.mjs --bench    tools/bench.ts -> .build/bench.mjs (decode speed)

import { build } from "esbuild";
import { mkdtempSync, readFileSync, readdirSync, rmSync, copyFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const WEB = join(here, "..", "recorder", "lucid_recorder", "player", "web");
const STATIC = ["index.html", "player.css"];

async function page(out) {
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [join(here, "src", "ui", "main.ts")],
    bundle: true,
    minify: true,
    format: "esm",
    target: ["chrome120", "firefox128", "safari17"],
    outfile: join(out, "player.js"),
    legalComments: "eof",
    charset: "utf8",
    logLevel: "warning",
  });
  for (const name of STATIC) copyFileSync(join(here, "src", "ui", name), join(out, name));
}

async function tests() {
  const out = join(here, ".build", "test");
  rmSync(join(here, ".build"), { recursive: true, force: true });
  const entries = readdirSync(join(here, "test")).filter((f) => f.endsWith(".test.ts"));
  await build({
    entryPoints: entries.map((f) => join(here, "test", f)),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node18",
    outdir: out,
    outExtension: { ".js": ".mjs" },
    sourcemap: "inline",
    logLevel: "warning",
  });
}

const arg = process.argv[2];
if (arg === "--tests") {
  await tests();
} else if (arg === "--bench") {
  await build({
    entryPoints: [join(here, "tools", "bench.ts")], bundle: true, platform: "node",
    format: "esm", target: "node18", outfile: join(here, ".build", "bench.mjs"),
    logLevel: "warning",
  });
} else if (arg === "--check") {
  const fresh = mkdtempSync(join(tmpdir(), "lucid-player-"));
  try {
    await page(fresh);
    const stale = ["player.js", ...STATIC].filter((name) => {
      let committed;
      try {
        committed = readFileSync(join(WEB, name));
      } catch {
        return true;
      }
      return !committed.equals(readFileSync(join(fresh, name)));
    });
    if (stale.length) {
      console.error(`${WEB}: stale (${stale.join(", ")}); run: npm --prefix player run build`);
      process.exit(1);
    }
    console.log(`${WEB}: up to date`);
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
} else if (arg === undefined) {
  await page(WEB);
  const size = readFileSync(join(WEB, "player.js")).length;
  console.log(`${WEB}/player.js: ${size} bytes`);
} else {
  console.error(`unknown argument ${arg}`);
  process.exit(2);
}
