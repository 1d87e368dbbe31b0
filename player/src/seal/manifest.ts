// manifest.json (recorder/lucid_recorder/sealing/manifest.py): a convenience and a
// completion marker, never the root of trust; verify.ts checks it against the chunks.

import { fromBase64, fromHex } from "./bytes.js";
import type { KeyRecord } from "./keys.js";

export type GapReason = "RecorderRestart" | "DataDropped";

export interface ChunkInfo {
  seq: number;
  epoch: number;
  startNs: bigint;
  endNs: bigint;
  plaintextBytes: number;
  sealedBytes: number;
  sha256: string;
  droppedBefore: boolean;
}

export interface Gap {
  afterSeq: number | null;
  beforeSeq: number;
  startNs: bigint;
  endNs: bigint;
  reason: GapReason;
}

export interface Manifest {
  session: { namespace: string; name: string; uid: string };
  recipientFingerprint: string;
  startedAt: string;
  stoppedAt: string | null;
  updatedAt: string;
  keys: KeyRecord[];
  chunks: ChunkInfo[];
  totals: { chunks: number; plaintextBytes: number; sealedBytes: number };
  lastChunkSha256: string | null;
  complete: boolean;
}

export class ManifestError extends Error {}

const HEX64 = /^[0-9a-f]{64}$/;

function field<T>(o: Record<string, unknown>, name: string, check: (v: unknown) => boolean,
  what: string, where: string): T {
  if (!(name in o)) throw new ManifestError(`${where}${name}: field required`);
  const v = o[name];
  if (!check(v)) throw new ManifestError(`${where}${name}: expected ${what}`);
  return v as T;
}
const isObj = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);
const isInt = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 0;
const isStr = (v: unknown) => typeof v === "string";
const isHex = (v: unknown) => typeof v === "string" && HEX64.test(v);
const isBool = (v: unknown) => typeof v === "boolean";

/**
 * Parse manifest.json. Big integers (Unix nanoseconds) are kept exact: JSON numbers past
 * 2^53 are read from the text, not through a double.
 */
export function parseManifest(text: string): Manifest {
  let raw: unknown;
  try {
    // Quote every integer of 16 digits or more so it survives as text, then BigInt it.
    raw = JSON.parse(text.replace(/([:\[,]\s*)(\d{16,})(?=\s*[,\]}])/g, '$1"$2"'));
  } catch (e) {
    throw new ManifestError(`not JSON: ${(e as Error).message}`);
  }
  if (!isObj(raw)) throw new ManifestError("(top level): expected an object");
  const m = raw as Record<string, unknown>;
  if (m.format !== "lucid.manifest/v1" && m.format !== "lucid.manifest/v2") {
    throw new ManifestError("format: expected 'lucid.manifest/v1' or 'lucid.manifest/v2'");
  }
  const session = field<Record<string, unknown>>(m, "session", isObj, "an object", "");
  const big = (v: unknown) => isInt(v) || (typeof v === "string" && /^\d+$/.test(v));
  const keys = field<unknown[]>(m, "keys", Array.isArray, "a list", "").map((k, i) => {
    if (!isObj(k)) throw new ManifestError(`keys.${i}: expected an object`);
    const o = k as Record<string, unknown>;
    const w = `keys.${i}.`;
    let eph: Uint8Array, wrapped: Uint8Array, signer: Uint8Array;
    try {
      eph = fromBase64(field<string>(o, "ephemeralPublicKey", isStr, "a string", w));
      wrapped = fromBase64(field<string>(o, "wrappedKey", isStr, "a string", w));
      // Format 2: the run's signing key, part of the key record (and its wrap context).
      signer = typeof o.signingPublicKey === "string" ? fromBase64(o.signingPublicKey)
        : new Uint8Array();
    } catch (e) {
      if (e instanceof ManifestError) throw e;
      throw new ManifestError(`${w}: not base64`);
    }
    if (eph.length !== 32 || wrapped.length !== 48 || (signer.length !== 0 && signer.length !== 32)) {
      throw new ManifestError(`${w}: key record of the wrong size`);
    }
    return { epoch: field<number>(o, "epoch", (v) => isInt(v) && (v as number) < 2 ** 32,
      "an integer 0..2^32-1", w),
    recipientFingerprint: fromHex(field<string>(o, "recipientFingerprint", isHex, "64 hex digits", w)),
    ephemeralPublicKey: eph, wrappedKey: wrapped, signer };
  });
  const chunks = field<unknown[]>(m, "chunks", Array.isArray, "a list", "").map((c, i) => {
    if (!isObj(c)) throw new ManifestError(`chunks.${i}: expected an object`);
    const o = c as Record<string, unknown>;
    const w = `chunks.${i}.`;
    return {
      seq: field<number>(o, "seq", isInt, "an integer >= 0", w),
      epoch: field<number>(o, "epoch", isInt, "an integer >= 0", w),
      startNs: BigInt(field<number | string>(o, "startNs", big, "an integer >= 0", w)),
      endNs: BigInt(field<number | string>(o, "endNs", big, "an integer >= 0", w)),
      plaintextBytes: field<number>(o, "plaintextBytes", isInt, "an integer >= 0", w),
      sealedBytes: field<number>(o, "sealedBytes", isInt, "an integer >= 0", w),
      sha256: field<string>(o, "sha256", isHex, "64 hex digits", w),
      droppedBefore: o.droppedBefore === true,
    };
  });
  const totals = field<Record<string, unknown>>(m, "totals", isObj, "an object", "");
  const opt = (v: unknown) => v === null || v === undefined || isStr(v);
  return {
    session: {
      namespace: field<string>(session, "namespace", isStr, "a string", "session."),
      name: field<string>(session, "name", isStr, "a string", "session."),
      uid: field<string>(session, "uid", isStr, "a string", "session."),
    },
    recipientFingerprint: field<string>(m, "recipientFingerprint", isHex, "64 hex digits", ""),
    startedAt: field<string>(m, "startedAt", isStr, "a date-time", ""),
    stoppedAt: field<string | null>(m, "stoppedAt", opt, "a date-time or null", "") ?? null,
    updatedAt: field<string>(m, "updatedAt", isStr, "a date-time", ""),
    keys, chunks,
    totals: {
      chunks: field<number>(totals, "chunks", isInt, "an integer", "totals."),
      plaintextBytes: field<number>(totals, "plaintextBytes", isInt, "an integer", "totals."),
      sealedBytes: field<number>(totals, "sealedBytes", isInt, "an integer", "totals."),
    },
    lastChunkSha256: (m.lastChunkSha256 ?? null) === null ? null
      : field<string>(m, "lastChunkSha256", isHex, "64 hex digits", ""),
    complete: m.complete === undefined ? false
      : field<boolean>(m, "complete", isBool, "true or false", ""),
  };
}

/** Gaps declared by consecutive chunks: a new epoch, or the data-dropped flag. */
export function deriveGaps(chunks: Iterable<ChunkInfo>): Gap[] {
  const gaps: Gap[] = [];
  let prev: ChunkInfo | null = null;
  for (const info of [...chunks].sort((a, b) => a.seq - b.seq)) {
    const adjacent = prev !== null && prev.seq + 1 === info.seq;
    const start = adjacent ? prev!.endNs : info.startNs;
    const after = adjacent ? prev!.seq : null;
    if (info.droppedBefore) {
      gaps.push({ afterSeq: after, beforeSeq: info.seq, startNs: start, endNs: info.startNs,
        reason: "DataDropped" });
    } else if (adjacent && info.epoch !== prev!.epoch) {
      gaps.push({ afterSeq: after, beforeSeq: info.seq, startNs: start, endNs: info.startNs,
        reason: "RecorderRestart" });
    }
    prev = info;
  }
  return gaps;
}

/** datetime.isoformat() of the instant a manifest names (for messages like the reference's). */
export function pyIsoformat(s: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$/
    .exec(s);
  if (!m) return s;
  const time = m[2]!.length === 5 ? `${m[2]}:00` : m[2]!;
  const micro = (m[3] ?? "").slice(0, 6).padEnd(6, "0");
  const frac = /^0*$/.test(micro) ? "" : `.${micro}`;
  let zone = m[4] ?? "";
  if (zone === "Z") zone = "+00:00";
  else if (zone && !zone.includes(":")) zone = `${zone.slice(0, 3)}:${zone.slice(3)}`;
  return `${m[1]}T${time}${frac}${zone}`;
}
