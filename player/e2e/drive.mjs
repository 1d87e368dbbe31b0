// Drives the player page in Debian's Chromium with playwright-core, for the Python e2e tests
// (tests/e2e/test_player_browser.py), which start the stack, the recorder and
// `lucid-play serve`, and judge the results.
//
//   node player/e2e/drive.mjs SCRIPT.json
//
// SCRIPT: {"url": ..., "out": DIR, "steps": [{"do": ..., ...}, ...]}. Steps run in order;
// each appends its result to the JSON printed on stdout, together with every request the
// page made and those that went to another origin than the page's own (none may: they are
// also blocked). Any failed step exits 1 with the error and the results so far.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const CHROMIUM = process.env.LUCID_CHROMIUM ?? "/usr/bin/chromium";
// Without the background-networking flags Chromium tries to reach Google's hosts, which
// this sandbox refuses; none of them changes how the page runs.
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const script = JSON.parse(readFileSync(process.argv[2], "utf8"));
const base = new URL(script.url);
const results = [];
const requests = [];
const offOrigin = [];
const consoleLines = [];

const profile = mkdtempSync(join(tmpdir(), "lucid-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM, headless: true, args: ARGS,
  viewport: script.viewport ?? { width: 1400, height: 1000 },
});
let exitCode = 0;
try {
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.origin !== base.origin && url.protocol !== "data:") {
      offOrigin.push(url.href);
      return route.abort("blockedbyclient");
    }
    return route.continue();
  });
  const page = context.pages()[0] ?? await context.newPage();
  page.on("request", (r) => requests.push(r.url()));
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
  await page.goto(script.url, { waitUntil: "load" });
  if (script.out) mkdirSync(script.out, { recursive: true });
  for (const step of script.steps) {
    results.push({ step: step.do, ...(await run(page, step)) });
  }
} catch (e) {
  exitCode = 1;
  results.push({ error: String(e?.stack ?? e) });
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify({ results, requests, offOrigin, console: consoleLines }));
process.exit(exitCode);

async function run(page, step) {
  const timeout = step.timeout ?? 60_000;
  switch (step.do) {
    case "loadKey": {
      await page.setInputFiles("#keyfile", step.path);
      if (step.passphrase !== undefined) {
        await page.waitForSelector("#passform:not([hidden])", { timeout });
        await page.fill("#passphrase", step.passphrase);
        await page.click("#passform button");
      }
      return {};
    }
    case "waitFrame": {
      // A frame (not a blank) is on the canvas, optionally at a given offset (ns).
      await page.waitForFunction(({ t }) => {
        const c = document.getElementById("screen");
        return c.dataset.state === "frame" && (t === undefined || c.dataset.t === t);
      }, { t: step.t }, { timeout, polling: 20 });
      return { t: await page.getAttribute("#screen", "data-t") };
    }
    case "seek": {
      // Type the time into the seek box as a person would, then wait for its frame.
      await page.fill("#seek", step.to);
      await page.press("#seek", "Enter");
      await page.waitForFunction(({ t }) => {
        const c = document.getElementById("screen");
        return c.dataset.t === t && document.body.dataset.seekMs !== undefined;
      }, { t: step.expectNs }, { timeout, polling: 5 });
      const state = await page.getAttribute("#screen", "data-state");
      const seekMs = Number(await page.evaluate(() => {
        const v = document.body.dataset.seekMs;
        delete document.body.dataset.seekMs;
        return v;
      }));
      const out = { state, seekMs };
      if (step.capture) Object.assign(out, await capture(page, step.capture));
      return out;
    }
    case "capture":
      return capture(page, step.name);
    case "screenshot":
      await page.screenshot({ path: step.path, fullPage: step.fullPage ?? false });
      return { path: step.path };
    case "click":
      await page.click(step.selector, { timeout });
      return {};
    case "select":
      await page.selectOption(step.selector, step.value);
      return {};
    case "check":
      await page.setChecked(step.selector, step.value ?? true);
      return {};
    case "waitFor": {
      // A function, not a string: Playwright evaluates string predicates with eval, which
      // the page's Content-Security-Policy (rightly) forbids.
      const predicate = new Function("arg", `return (${step.js});`);
      await page.waitForFunction(predicate, step.arg, { timeout, polling: step.polling ?? 50 });
      return {};
    }
    case "eval": {
      // An expression, or with "arg" a function called with it (as a Function, for the same
      // reason as waitFor).
      const body = "arg" in step ? `return (${step.js})(arg);` : `return (${step.js});`;
      return { value: (await page.evaluate(new Function("arg", body), step.arg)) ?? null };
    }
    case "text":
      return { text: await page.textContent(step.selector, { timeout }) };
    case "sleep":
      await page.waitForTimeout(step.ms);
      return {};
    default:
      throw new Error(`unknown step ${step.do}`);
  }
}

/** The screen canvas's pixels as RGB24 (what `lucid-play frame` writes as PNG), to a file. */
async function capture(page, name) {
  const { w, h, b64, t, seq } = await page.evaluate(() => {
    const c = document.getElementById("screen");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const rgb = new Uint8Array(c.width * c.height * 3);
    for (let i = 0, o = 0; i < d.length; i += 4) {
      rgb[o++] = d[i]; rgb[o++] = d[i + 1]; rgb[o++] = d[i + 2];
    }
    let bin = "";
    for (let i = 0; i < rgb.length; i += 0x8000) {
      bin += String.fromCharCode.apply(null, rgb.subarray(i, i + 0x8000));
    }
    return { w: c.width, h: c.height, b64: btoa(bin), t: c.dataset.t, seq: c.dataset.seq };
  });
  const file = join(script.out, `${name}.rgb`);
  writeFileSync(file, Buffer.from(b64, "base64"));
  return { capture: file, width: w, height: h, t, seq };
}
