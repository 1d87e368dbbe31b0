// The sealed chunk container (.lrec v1 and v2): recorder/lucid_recorder/sealing/container.py.
// Big-endian header, all of it the AES-GCM associated data; nonce = epoch u32 || seq u64.
// Version 2 adds the run's signing key, namespace and name to the header and a 64-byte
// ed25519 signature after the ciphertext. The player checks the AES-GCM tag and the hash
// chain; the signatures and the operator's seals are checked by `lucid-seal verify`.

import { own } from "./bytes.js";
import { AuthenticationError, ChunkFormatError } from "./errors.js";
import { MAX_PLAINTEXT_BYTES } from "./compression.js";
import type { KeyRecord } from "./keys.js";

const MAGIC = [0x4c, 0x52, 0x45, 0x43]; // "LREC"
export const FIXED_HEADER_BYTES = 201; // version 1
export const FIXED_HEADER_BYTES_V2 = 235;
export const SIGNATURE_BYTES = 64;
export const MAX_HEADER_BYTES = FIXED_HEADER_BYTES_V2 + 255 + 63 + 253;
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
  namespace: string;
  name: string;
  version: number;
  headerLen: number;
  sealedLen: bigint;
  droppedBefore: boolean;
}

const uidDecoder = new TextDecoder("utf-8", { fatal: true });

/** Parse and sanity-check a header; nothing here is authenticated yet. */
export function decodeHeader(sealed: Uint8Array): ChunkHeader {
  if (sealed.length < 5) {
    throw new ChunkFormatError(`${sealed.length} bytes is too short for a chunk header`);
  }
  if (MAGIC.some((b, i) => sealed[i] !== b)) {
    throw new ChunkFormatError("not a Lucid chunk (bad magic)");
  }
  const version = sealed[4]!;
  if (version !== 1 && version !== 2) {
    throw new ChunkFormatError(`chunk format version ${version} is not supported`);
  }
  if (sealed.length < (version === 1 ? FIXED_HEADER_BYTES : FIXED_HEADER_BYTES_V2)) {
    throw new ChunkFormatError(`${sealed.length} bytes is too short for a chunk header`);
  }
  const v = new DataView(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const codec = sealed[5]!;
  const flags = v.getUint16(6, false);
  const headerLen = v.getUint32(8, false);
  const seq = v.getBigUint64(12, false);
  const epoch = v.getUint32(20, false);
  const startNs = v.getBigUint64(24, false);
  const endNs = v.getBigUint64(32, false);
  const plaintextLen = v.getBigUint64(40, false);
  const ciphertextLen = v.getBigUint64(48, false);
  const fixed = version === 1 ? FIXED_HEADER_BYTES : FIXED_HEADER_BYTES_V2;
  const uidLen = version === 1 ? sealed[200]! : sealed[232]!;
  const nsLen = version === 1 ? 0 : sealed[233]!;
  const nameLen = version === 1 ? 0 : sealed[234]!;
  if (version === 2 && (nsLen === 0 || nameLen === 0)) {
    throw new ChunkFormatError("namespace or name is empty");
  }
  if (headerLen !== fixed + uidLen + nsLen + nameLen || uidLen === 0) {
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
  let sessionUid: string, namespace: string, name: string;
  try {
    sessionUid = uidDecoder.decode(sealed.subarray(fixed, fixed + uidLen));
    namespace = uidDecoder.decode(sealed.subarray(fixed + uidLen, fixed + uidLen + nsLen));
    name = uidDecoder.decode(sealed.subarray(fixed + uidLen + nsLen, headerLen));
  } catch {
    throw new ChunkFormatError("session UID, namespace or name is not UTF-8");
  }
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) {
    // Sequence numbers count chunks; 2^53 of them is 285 million years at one a second.
    throw new ChunkFormatError(`sequence number ${seq} is beyond what the player handles`);
  }
  return {
    codec, flags, seq: Number(seq), epoch, startNs, endNs, plaintextLen: Number(plaintextLen),
    ciphertextLen, prevSha256: sealed.slice(56, 88),
    key: { epoch, recipientFingerprint: sealed.slice(88, 120),
      ephemeralPublicKey: sealed.slice(120, 152), wrappedKey: sealed.slice(152, 200),
      signer: version === 1 ? new Uint8Array() : sealed.slice(200, 232) },
    sessionUid, namespace, name, version, headerLen,
    sealedLen: BigInt(headerLen) + ciphertextLen + BigInt(version === 1 ? 0 : SIGNATURE_BYTES),
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
      dataKey, own(sealed.subarray(header.headerLen,
        header.headerLen + Number(header.ciphertextLen)))));
  } catch {
    throw new AuthenticationError(`chunk ${header.seq} failed authentication: its bytes were ` +
      "modified");
  }
}
