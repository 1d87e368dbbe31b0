// Times for people, as recorder/lucid_recorder/player/text.py writes and reads them, so the
// page's "1:23.500" is the CLI's `--at 1:23.5`.

export const NS = 1_000_000_000;

/** Session time as M:SS.mmm (H:MM:SS.mmm past an hour). */
export function offset(ns: number, decimals = 3): string {
  const sign = ns < 0 ? "-" : "";
  const seconds = Math.abs(ns) / NS;
  const hours = Math.floor(seconds / 3600);
  const rest = seconds - hours * 3600;
  const minutes = Math.floor(rest / 60);
  const secs = rest - minutes * 60;
  const width = decimals ? 3 + decimals : 2;
  const secsText = secs.toFixed(decimals).padStart(width, "0");
  if (hours) return `${sign}${hours}:${String(minutes).padStart(2, "0")}:${secsText}`;
  return `${sign}${minutes}:${secsText}`;
}

/** Seconds ("83.5") or clock notation ("1:23.5", "1:02:03") to ns; throws if neither. */
export function parseTime(text: string): number {
  const parts = text.trim().split(":");
  const bad = () => new Error(`not a time: "${text}" (use seconds, M:SS or H:MM:SS)`);
  if (parts.length < 1 || parts.length > 3 || parts.some((p) => p.trim() === "")) throw bad();
  let seconds = 0;
  for (const p of parts) {
    if (!/^\s*[+]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(p)) throw bad();
    const n = Number(p);
    if (!(n >= 0) || !Number.isFinite(n)) throw bad();
    seconds = seconds * 60 + n;
  }
  return Math.round(seconds * NS);
}

/** UTC wall clock of a session time, or null when the start time was not recorded. */
export function wallclock(sessionStartUnixNs: bigint, ns: number): string | null {
  if (sessionStartUnixNs <= 0n) return null;
  const ms = Number((sessionStartUnixNs + BigInt(Math.round(ns))) / 1_000_000n);
  return new Date(ms).toISOString().replace("T", " ");
}

export function size(n: number): string {
  let value = n;
  for (const unit of ["B", "KB", "MB", "GB"]) {
    if (value < 1000 || unit === "GB") return unit === "B" ? `${n} B` : `${value.toFixed(1)} ${unit}`;
    value /= 1000;
  }
  return `${n} B`;
}
