// The sealed chunk container (.lrec v1): recorder/lucid_recorder/sealing/container.py.
// Big-endian header, all of it the AES-GCM associated data; nonce = epoch u32 || seq u64.

import { own } from "./bytes.js";
import { AuthenticationError, ChunkFormatError } from "./errors.js";
import { MAX_PLAINTEXT_BYTES } from "./compression.js";
import type { KeyRecord } from "./keys.js";

const MAGIC = [0x4c, 0x52, 0x45, 0x43]; // "LREC"
export const FIXED_HEADER_BYTES = 201;
export const MAX_HEADER_BYTES = FIXED_HEADER_BYTES + 255;
export const GCM_TAG_BYTES = 16;
export const FLAG_DATA_DROPPED_BEFORE = 0x0001;
export const GENESIS = new Uint8Array(32);

export interface ChunkHeader {
  codec: number;
  flags: number;
  seq: number;
  epoch: number;
  startNs: bigint;
  endNs: bigint;
  plaintextLen: number;
  ciphertextLen: bigint;
  prevSha256: Uint8Array;
  key: KeyRecord;
  sessionUid: string;
  headerLen: number;
  sealedLen: bigint;
  droppedBefore: boolean;
}

const uidDecoder = new TextDecoder("utf-8", { fatal: true });

/** Parse and sanity-check a header; nothing here is authenticated yet. */
export function decodeHeader(sealed: Uint8Array): ChunkHeader {
  if (sealed.length < FIXED_HEADER_BYTES) {
    throw new ChunkFormatError(`${sealed.length} bytes is too short for a chunk header`);
  }
  const v = new DataView(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (MAGIC.some((b, i) => sealed[i] !== b)) {
    throw new ChunkFormatError("not a Lucid chunk (bad magic)");
  }
  const version = sealed[4]!;
  const codec = sealed[5]!;
  const flags = v.getUint16(6, false);
  const headerLen = v.getUint32(8, false);
  const seq = v.getBigUint64(12, false);
  const epoch = v.getUint32(20, false);
  const startNs = v.getBigUint64(24, false);
  const endNs = v.getBigUint64(32, false);
  const plaintextLen = v.getBigUint64(40, false);
  const ciphertextLen = v.getBigUint64(48, false);
  const uidLen = sealed[200]!;
  if (version !== 1) throw new ChunkFormatError(`chunk format version ${version} is not supported`);
  if (headerLen !== FIXED_HEADER_BYTES + uidLen || uidLen === 0) {
    throw new ChunkFormatError("inconsistent header length");
  }
  if (sealed.length < headerLen) throw new ChunkFormatError("header is cut short");
  if (codec !== 0 && codec !== 1) throw new ChunkFormatError(`unknown codec id ${codec}`);
  if (flags & ~FLAG_DATA_DROPPED_BEFORE) {
    throw new ChunkFormatError(`unknown flags 0x${flags.toString(16).padStart(4, "0")}`);
  }
  if (endNs < startNs) throw new ChunkFormatError("time range ends before it starts");
  if (plaintextLen > BigInt(MAX_PLAINTEXT_BYTES)) {
    throw new ChunkFormatError(`stated plaintext length ${plaintextLen} is too large`);
  }
  if (ciphertextLen < BigInt(GCM_TAG_BYTES)) {
    throw new ChunkFormatError("ciphertext shorter than a GCM tag");
  }
  let sessionUid: string;
  try {
    sessionUid = uidDecoder.decode(sealed.subarray(FIXED_HEADER_BYTES, headerLen));
  } catch {
    throw new ChunkFormatError("session UID is not UTF-8");
  }
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) {
    // Sequence numbers count chunks; 2^53 of them is 285 million years at one a second.
    throw new ChunkFormatError(`sequence number ${seq} is beyond what the player handles`);
  }
  return {
    codec, flags, seq: Number(seq), epoch, startNs, endNs, plaintextLen: Number(plaintextLen),
    ciphertextLen, prevSha256: sealed.slice(56, 88),
    key: { epoch, recipientFingerprint: sealed.slice(88, 120),
      ephemeralPublicKey: sealed.slice(120, 152), wrappedKey: sealed.slice(152, 200) },
    sessionUid, headerLen, sealedLen: BigInt(headerLen) + ciphertextLen,
    droppedBefore: (flags & FLAG_DATA_DROPPED_BEFORE) !== 0,
  };
}

export function nonce(epoch: number, seq: number): Uint8Array<ArrayBuffer> {
  const n = new Uint8Array(12);
  const v = new DataView(n.buffer);
  v.setUint32(0, epoch, false);
  v.setBigUint64(4, BigInt(seq), false);
  return n;
}

/** Authenticate and decrypt; returns the (still compressed) payload. */
export async function openSealed(sealed: Uint8Array, dataKey: CryptoKey, header: ChunkHeader):
  Promise<Uint8Array> {
  if (BigInt(sealed.length) !== header.sealedLen) {
    throw new ChunkFormatError(`chunk is ${sealed.length} bytes, its header says ` +
      `${header.sealedLen} (truncated or extended)`);
  }
  try {
    return new Uint8Array(await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: nonce(header.epoch, header.seq),
        additionalData: own(sealed.subarray(0, header.headerLen)) },
      dataKey, own(sealed.subarray(header.headerLen))));
  } catch {
    throw new AuthenticationError(`chunk ${header.seq} failed authentication: its bytes were ` +
      "modified");
  }
}
