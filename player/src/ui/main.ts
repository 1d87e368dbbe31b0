// The page: key import, playback loop, canvas, timeline, verdicts. Everything that decides
// something lives in play/, seal/ and format/; this file only wires it to the DOM.

import type { Framebuffer, ShapeState } from "../format/framebuffer.js";
import type { Marker } from "../format/index.js";
import { KeyFormatError } from "../seal/errors.js";
import { PassphraseNeeded, type RecipientKey, importPrivateKey, shortFingerprint } from "../seal/keys.js";
import { Api, type SessionInfo } from "../play/api.js";
import { DEFAULT_ARROW } from "../play/arrow.js";
import { Player, type Shown } from "../play/player.js";
import { type ChunkEntry, Session } from "../play/session.js";
import { NS, offset, parseTime, size, wallclock } from "../play/text.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const screen = $<HTMLCanvasElement>("screen");
const pointerCanvas = $<HTMLCanvasElement>("pointer");
const overlay = $<HTMLDivElement>("overlay");
const timeline = $<HTMLCanvasElement>("timeline");
const statusLine = $<HTMLDivElement>("status");

// Stretches without updates longer than this are skipped with "skip idle" (recording time).
const IDLE_NS = 2 * NS;
// How often a live session is asked for new chunks; a finished one is not polled.
const POLL_MS = 250;
// Following live, more than one chunk of buffered recording means the page fell behind (a
// slow upload, a busy machine, a late start): it plays faster in proportion to how far,
// closing the excess within about CATCH_UP_NS, never skipping, at most MAX_CATCH_UP.
const CATCH_UP_NS = 2 * NS;
const MAX_CATCH_UP = 4;

const api = new Api();
let info: SessionInfo | null = null;
let session: Session | null = null;
let player: Player | null = null;

// Playback clock, in session nanoseconds.
let t = 0;
let playing = false;
let speed = 1;
let clockT0 = 0;
let clockW0 = 0;
let rate = 1;
let followLive = false;
let waitingForData = false;
let rendering = false;
let dirtyAll = true;
let shownKind: Shown["kind"] | "none" = "none";
let wantRender = true;
let keyLoadedAt = 0;
let firstFrameMs: number | null = null;
let seekStarted: number | null = null;
let imageData: ImageData | null = null;

function setStatus(text: string): void {
  statusLine.textContent = text;
}

function origin(): number {
  return player?.range()?.[0] ?? 0;
}

function sessionStartUnixNs(): bigint {
  for (const s of session?.spans() ?? []) if (s.index) return s.index.sessionStartUnixNs;
  return 0n;
}

// -- key ------------------------------------------------------------------------------

let pendingPem: string | null = null;

async function loadKey(pemText: string, passphrase?: string): Promise<void> {
  const error = $<HTMLParagraphElement>("keyerror");
  error.textContent = "";
  keyLoadedAt = performance.now();
  let key: RecipientKey;
  try {
    key = await importPrivateKey(pemText, passphrase);
  } catch (e) {
    if (e instanceof PassphraseNeeded) {
      pendingPem = pemText;
      $("passform").hidden = false;
      $<HTMLInputElement>("passphrase").focus();
      error.textContent = e.message;
      return;
    }
    error.textContent = e instanceof KeyFormatError ? e.message : `cannot use this key: ${String(e)}`;
    return;
  }
  pendingPem = null;
  $("passform").hidden = true;
  await start(key);
}

$<HTMLInputElement>("keyfile").addEventListener("change", async (ev) => {
  const input = ev.target as HTMLInputElement;
  const file = input.files?.[0];
  input.value = ""; // the same file may be chosen again after an error
  if (!file) return;
  if (file.size > 64 * 1024) {
    $("keyerror").textContent = `${file.name} is ${file.size} bytes: not a private key file`;
    return;
  }
  await loadKey(await file.text());
});

$<HTMLFormElement>("passform").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const field = $<HTMLInputElement>("passphrase");
  const pass = field.value;
  field.value = "";
  if (pendingPem !== null) await loadKey(pendingPem, pass);
});

// -- session --------------------------------------------------------------------------

async function start(key: RecipientKey): Promise<void> {
  if (info === null) return;
  const candidate = new Session(api, info, key);
  setStatus("fetching and verifying chunks…");
  let firstDraw = true;
  candidate.onChange = () => {
    if (candidate.wrongKey) return;
    if (session !== candidate) {
      // The first verified chunk: show the player (with a wrong key nothing ever gets here).
      if (!candidate.spans().some((s) => s.state === "ok")) return;
      adopt(candidate);
    }
    refreshViews();
    if (firstDraw && candidate.spans().some((s) => s.state === "ok")) {
      firstDraw = false;
      jumpToStart();
    }
  };
  try {
    await candidate.refresh();
  } catch (e) {
    $("keyerror").textContent = String((e as Error).message ?? e);
    return;
  }
  if (candidate.wrongKey) {
    const p = candidate.report!.problems.find((x) => x.code === "wrong-key")!;
    $("keyerror").textContent = `Wrong key: ${p.message}. Nothing was decrypted or shown; ` +
      "choose the private key this session was recorded for.";
    setStatus("");
    return;
  }
  if (session !== candidate) {
    adopt(candidate);
    refreshViews();
    jumpToStart();
  }
  poll();
}

function adopt(s: Session): void {
  session = s;
  player = new Player(s);
  $("keybox").classList.add("loaded");
  $("player").hidden = false;
  $("session").textContent += `  ·  key ${shortFingerprint(s.key.fingerprint)}`;
}

function jumpToStart(): void {
  if (!player || !session) return;
  if (!session.complete) {
    // Live: show the newest verified moment and play on from there as chunks arrive.
    followLive = true;
    const end = player.drawableEnd();
    seekTo(end ?? origin(), false);
    setPlaying(true);
  } else {
    seekTo(origin(), false);
  }
}

function poll(): void {
  if (!session) return;
  const s = session;
  setTimeout(async () => {
    if (s !== session) return;
    if (!s.complete || s.progress().walked < s.progress().stored) {
      try {
        if (await s.refresh()) refreshViews();
      } catch (e) {
        setStatus(`refresh failed: ${(e as Error).message}; retrying`);
      }
    }
    if (!s.complete) poll();
    else refreshViews();
  }, POLL_MS);
}

// -- playback -------------------------------------------------------------------------

function now(): number {
  return performance.now();
}

function setPlaying(on: boolean): void {
  playing = on;
  clockT0 = t;
  clockW0 = now();
  $("play").textContent = on ? "❚❚" : "▶";
  wantRender = true;
}

function seekTo(target: number, user = true): void {
  const range = player?.range();
  if (!range) return;
  t = Math.min(Math.max(target, range[0]), range[1]);
  clockT0 = t;
  clockW0 = now();
  if (user) {
    seekStarted = now();
    if (followLive && t < (player!.drawableEnd() ?? 0) - 2 * NS) followLive = false;
  }
  wantRender = true;
}

function liveRate(): number {
  const spans = session?.spans().filter((s) => s.state === "ok") ?? [];
  const newest = spans[spans.length - 1];
  if (!newest) return 1;
  const chunk = newest.endNs! - newest.startNs!;
  const excess = newest.endNs! - t - chunk;
  if (excess <= 0.25 * NS) return 1;
  // In quarter steps, so the rate changes a few times while catching up, not every frame.
  return Math.min(MAX_CATCH_UP, 1 + Math.ceil((excess / CATCH_UP_NS) * 4) / 4);
}

function tick(): void {
  requestAnimationFrame(tick);
  if (!player || !session) return;
  const range = player.range();
  if (!range) return;
  if (playing) {
    const want = followLive ? liveRate() : 1;
    if (want !== rate) {
      // Re-anchor where the clock is now, not at the last drawn frame: a rate that changes
      // often must not throw away the time since that frame.
      const at = now();
      clockT0 += (at - clockW0) * 1e6 * speed * rate;
      clockW0 = at;
      rate = want;
    }
    let target = clockT0 + (now() - clockW0) * 1e6 * speed * rate;
    if ($<HTMLInputElement>("skipidle").checked) {
      const next = player.nextActivity(t);
      if (next !== null && next - t > IDLE_NS && target < next) {
        setStatus(`skipped ${((next - t) / NS).toFixed(1)} s without activity`);
        target = next;
        clockT0 = next;
        clockW0 = now();
      }
    }
    const end = player.drawableEnd() ?? range[1];
    if (target >= end) {
      target = end;
      if (session.complete && target >= range[1]) setPlaying(false);
      else {
        waitingForData = true;
        clockT0 = end;
        clockW0 = now();
      }
    } else {
      waitingForData = false;
    }
    if (target !== t) {
      t = target;
      wantRender = true;
    }
  }
  if (wantRender && !rendering) {
    wantRender = false;
    void render(t);
  }
  updateClock();
}

async function render(at: number): Promise<void> {
  if (!player) return;
  rendering = true;
  try {
    const shown = await player.frameAt(at);
    draw(shown);
  } catch (e) {
    setStatus(`cannot show ${offset(at - origin())}: ${(e as Error).message}`);
  } finally {
    rendering = false;
  }
}

function draw(shown: Shown): void {
  screen.dataset.t = String(shown.t - origin());
  screen.dataset.sessionT = String(shown.t);
  screen.dataset.state = shown.kind;
  screen.dataset.seq = shown.seq === null ? "" : String(shown.seq);
  if (shown.kind === "blank") {
    const ctx = screen.getContext("2d")!;
    ctx.fillStyle = "#101216";
    ctx.fillRect(0, 0, screen.width, screen.height);
    pointerCanvas.getContext("2d")!.clearRect(0, 0, pointerCanvas.width, pointerCanvas.height);
    overlay.hidden = false;
    overlay.className = "blank";
    overlay.textContent = shown.reason;
    shownKind = "blank";
    dirtyAll = true;
    if (shown.wait) wantRender = true;
  } else {
    paint(shown.fb);
    drawPointer(shown.fb);
    overlay.hidden = shown.note === null;
    overlay.className = "";
    overlay.textContent = shown.note ?? "";
    shownKind = "frame";
    if (firstFrameMs === null) {
      firstFrameMs = now() - keyLoadedAt;
      document.body.dataset.firstFrameMs = firstFrameMs.toFixed(1);
      setStatus(`first frame ${firstFrameMs.toFixed(0)} ms after the key was loaded`);
    }
    if (seekStarted !== null) {
      const ms = now() - seekStarted;
      seekStarted = null;
      document.body.dataset.seekMs = ms.toFixed(2);
      setStatus(`seek to ${offset(shown.t - origin())}: ${ms.toFixed(1)} ms ` +
        `(${shown.records} records decoded)`);
    }
  }
  document.querySelectorAll("#chunks tr.current").forEach((r) => r.classList.remove("current"));
  if (shown.seq !== null) {
    document.querySelector(`#chunks tr[data-seq="${shown.seq}"]`)?.classList.add("current");
  }
  drawTimeline();
}

function paint(fb: Framebuffer): void {
  const ctx = screen.getContext("2d")!;
  if (screen.width !== fb.width || screen.height !== fb.height) {
    screen.width = pointerCanvas.width = fb.width;
    screen.height = pointerCanvas.height = fb.height;
    // Small desktops are shown at a whole multiple of their size, pixels kept square.
    const zoom = Math.max(1, Math.floor(800 / fb.width));
    screen.style.width = zoom > 1 ? `${fb.width * zoom}px` : "";
    screen.classList.toggle("zoomed", zoom > 1);
    dirtyAll = true;
  }
  if (imageData === null || imageData.data !== fb.rgba) {
    imageData = new ImageData(fb.rgba as Uint8ClampedArray<ArrayBuffer>, fb.width, fb.height);
    dirtyAll = true;
  }
  const box = fb.takeDirty();
  if (dirtyAll || shownKind !== "frame") {
    ctx.putImageData(imageData, 0, 0);
  } else if (box !== null) {
    ctx.putImageData(imageData, 0, 0, box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0);
  }
  dirtyAll = false;
}

const shapeCanvases = new WeakMap<object, HTMLCanvasElement>();

function drawPointer(fb: Framebuffer): void {
  const ctx = pointerCanvas.getContext("2d")!;
  ctx.clearRect(0, 0, pointerCanvas.width, pointerCanvas.height);
  const state: ShapeState = fb.pointer.shape;
  if (!$<HTMLInputElement>("showpointer").checked || state === null) return;
  const shape = state === "default" ? DEFAULT_ARROW : state;
  let img = shapeCanvases.get(shape);
  if (img === undefined) {
    img = document.createElement("canvas");
    img.width = shape.width;
    img.height = shape.height;
    img.getContext("2d")!.putImageData(new ImageData(
      new Uint8ClampedArray(shape.rgba), shape.width, shape.height), 0, 0);
    shapeCanvases.set(shape, img);
  }
  ctx.drawImage(img, fb.pointer.x - shape.hotspotX, fb.pointer.y - shape.hotspotY);
}

function updateClock(): void {
  const range = player?.range();
  if (!range) return;
  $("clock").textContent = `${offset(t - range[0])} / ${offset(range[1] - range[0])}`;
  $("clock").title = wallclock(sessionStartUnixNs(), t) ?? "";
  const live = session !== null && !session.complete;
  $("live").hidden = !live;
  $("golive").hidden = !live || followLive;
  if (live && shownKind === "frame") {
    const start = sessionStartUnixNs();
    if (start > 0n) {
      const lagMs = Date.now() - Number((start + BigInt(Math.round(t))) / 1_000_000n);
      $("lag").textContent = `${waitingForData ? "waiting for the next chunk · " : ""}` +
        `${(lagMs / 1000).toFixed(1)} s behind live`;
      document.body.dataset.lagMs = String(lagMs);
      // How old the newest verified moment is: what the recorder, the upload and the
      // polling cost; the rest of the lag is playback catching up at 1x.
      const edge = player!.drawableEnd();
      if (edge !== null) {
        document.body.dataset.edgeLagMs =
          String(Date.now() - Number((start + BigInt(Math.round(edge))) / 1_000_000n));
      }
    }
  } else {
    $("lag").textContent = "";
  }
}

// -- timeline and verdicts ------------------------------------------------------------

const COLORS: Record<string, string> = {
  ok: "#3f9b5b", pending: "#5b6270", failed: "#d0443c", missing: "#7a2a26",
  gap: "#e0a030", resize: "#4f8fe0", stop: "#f2f2f2", start: "#9bd1ff", head: "#ffffff",
};

function drawTimeline(): void {
  const range = player?.range();
  if (!range || !session) return;
  const width = timeline.clientWidth;
  if (timeline.width !== width * devicePixelRatio) {
    timeline.width = width * devicePixelRatio;
    timeline.height = 46 * devicePixelRatio;
  }
  const ctx = timeline.getContext("2d")!;
  ctx.setTransform(devicePixelRatio, 0, 0, devicePixelRatio, 0, 0);
  ctx.clearRect(0, 0, width, 46);
  const span = Math.max(1, range[1] - range[0]);
  const x = (ns: number) => ((ns - range[0]) / span) * width;
  for (const s of session.spans()) {
    const x0 = x(s.startNs!);
    const x1 = Math.max(x0 + 2, x(s.endNs ?? s.startNs!));
    ctx.fillStyle = COLORS[s.state]!;
    ctx.fillRect(x0, 14, x1 - x0 - 1, 18);
  }
  for (const g of session.report?.gaps ?? []) {
    ctx.fillStyle = COLORS.gap!;
    ctx.fillRect(x(Number(g.startNs)), 10, Math.max(3, x(Number(g.endNs)) - x(Number(g.startNs))), 26);
  }
  for (const m of markers()) {
    const mx = x(m.ts);
    if (m.kind === "gap") {
      ctx.fillStyle = COLORS.gap!;
      ctx.fillRect(x(m.startNs), 10, Math.max(3, x(m.endNs) - x(m.startNs)), 26);
    } else {
      ctx.fillStyle = COLORS[m.kind]!;
      ctx.fillRect(mx - 1, 4, 3, 38);
    }
  }
  ctx.fillStyle = COLORS.head!;
  ctx.fillRect(x(t) - 1, 0, 2, 46);
}

function markers(): Marker[] {
  return (session?.spans() ?? []).flatMap((s) => s.index?.markers ?? []);
}

timeline.addEventListener("click", (ev) => {
  const range = player?.range();
  if (!range) return;
  const rect = timeline.getBoundingClientRect();
  seekTo(range[0] + ((ev.clientX - rect.left) / rect.width) * (range[1] - range[0]));
});

let lastViews = "";

function refreshViews(): void {
  if (!session) return;
  const o = origin();
  const at = (ns: number | null) => ns === null ? "?" : offset(ns - o);
  const rows = session.spans();
  const unspanned = [...session.entries.values()].filter((e) => e.startNs === null);
  const fingerprint = JSON.stringify([...rows, ...unspanned].map((e) =>
    [e.seq, e.state, e.startNs, e.endNs, e.problems.length])) +
    JSON.stringify(session.sessionProblems) + String(session.complete);
  drawTimeline();
  if (fingerprint === lastViews) return;
  lastViews = fingerprint;

  const tbody = document.querySelector("#chunks tbody")!;
  tbody.replaceChildren(...[...rows, ...unspanned].sort((a, b) => a.seq - b.seq).map((e) => {
    const tr = document.createElement("tr");
    tr.dataset.seq = String(e.seq);
    tr.dataset.state = e.state;
    const verdict = verdictText(e);
    for (const text of [String(e.seq), `${at(e.startNs)} – ${at(e.endNs)}`,
      e.size === null ? "—" : size(e.size), verdict]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    tr.addEventListener("click", () => {
      if (e.startNs !== null) seekTo(e.startNs);
    });
    return tr;
  }));

  const report = session.report;
  const summary = $("summary");
  const p = session.progress();
  const verified = rows.filter((r) => r.state === "ok").length;
  summary.className = report?.ok ? "ok" : "bad";
  summary.textContent = report?.ok
    ? `All ${report.chunksExpected} chunks authentic, in order, and the session is finalized.`
    : `${verified} of ${p.stored} stored chunks verified; ` +
      `${session.complete ? "finalized" : "no final manifest (live, or never finished)"}` +
      (report && !report.ok ? `; ${report.problems.length} problem(s)` : "");
  $("problems").replaceChildren(...session.sessionProblems.map((x) => {
    const li = document.createElement("li");
    li.textContent = `${x.code}: ${x.message}`;
    if (x.code === "incomplete") li.className = "note";
    return li;
  }));

  const items: [number, string][] = [];
  for (const m of markers()) {
    if (m.kind === "start") items.push([m.ts, `start: ${m.text}`]);
    if (m.kind === "stop") items.push([m.ts, `stop: ${m.text || "(no reason)"}`]);
    if (m.kind === "resize") items.push([m.ts, `resize to ${m.width}x${m.height}`]);
    if (m.kind === "gap") {
      items.push([m.startNs, `gap of ${((m.endNs - m.startNs) / NS).toFixed(1)} s (reconnect): ${m.text}`]);
    }
  }
  for (const g of report?.gaps ?? []) {
    items.push([Number(g.startNs), `gap of ${(Number(g.endNs - g.startNs) / NS).toFixed(1)} s ` +
      `before chunk ${g.beforeSeq}: ${g.reason === "RecorderRestart" ? "recorder restarted" : "data dropped (spool full)"}`]);
  }
  for (const e of rows) {
    if (e.state === "failed") items.push([e.startNs!, `chunk ${e.seq} failed verification: not shown`]);
    if (e.state === "missing") items.push([e.startNs!, `chunk ${e.seq} missing`]);
  }
  items.sort((a, b) => a[0] - b[0]);
  $("markers").replaceChildren(...items.map(([ts, text]) => {
    const li = document.createElement("li");
    const span = document.createElement("span");
    span.className = "t";
    span.textContent = offset(ts - o);
    li.append(span, text);
    li.addEventListener("click", () => seekTo(ts));
    return li;
  }));
  if (p.walked < p.stored) setStatus(`verifying chunks: ${p.walked} of ${p.stored}…`);
  else if (document.body.dataset.verifiedMs === undefined && p.stored) {
    document.body.dataset.verifiedMs = (now() - keyLoadedAt).toFixed(0);
  }
  wantRender = true;
}

function verdictText(e: ChunkEntry): string {
  switch (e.state) {
    case "ok": return "✓ authentic, in place, chained";
    case "pending": return "… being verified";
    case "missing": return "✗ missing";
    default: return "✗ " + e.problems.map((p) => `${p.code}: ${p.message}`).join("; ");
  }
}

// -- controls -------------------------------------------------------------------------

$("play").addEventListener("click", () => setPlaying(!playing));
$<HTMLSelectElement>("speed").addEventListener("change", (ev) => {
  speed = Number((ev.target as HTMLSelectElement).value);
  setPlaying(playing);
});
$("showpointer").addEventListener("change", () => {
  wantRender = true;
  dirtyAll = true;
});
$("golive").addEventListener("click", () => {
  followLive = true;
  seekTo(player?.drawableEnd() ?? t, false);
  setPlaying(true);
});
$<HTMLFormElement>("seekform").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const field = $<HTMLInputElement>("seek");
  try {
    const ns = parseTime(field.value);
    // "Go to" shows that moment and stays there; play goes on from it.
    if (playing) setPlaying(false);
    followLive = false;
    seekTo(origin() + ns);
    field.setCustomValidity("");
  } catch (e) {
    field.setCustomValidity((e as Error).message);
    field.reportValidity();
  }
});
document.addEventListener("keydown", (ev) => {
  if (ev.target instanceof HTMLInputElement || !player) return;
  if (ev.key === " ") {
    ev.preventDefault();
    setPlaying(!playing);
  } else if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
    seekTo(t + (ev.key === "ArrowRight" ? 5 : -5) * NS);
  }
});
new ResizeObserver(() => drawTimeline()).observe(timeline);

// -- start ----------------------------------------------------------------------------

async function main(): Promise<void> {
  try {
    info = await api.session();
  } catch (e) {
    $("session").textContent = (e as Error).message;
    return;
  }
  const who = [info.namespace, info.name].filter(Boolean).join("/");
  $("session").textContent = `${who} · uid ${info.uid} · ${info.source}`;
  document.title = `${who} · Lucid player`;
  requestAnimationFrame(tick);
}

void main();
