// Chunk payload decompression, bounded like recorder/lucid_recorder/sealing/compression.py:
// never more than the header's plaintext length is produced, and anything else than
// exactly that length is refused. It only ever runs on authenticated payloads.

import { Decompress } from "fzstd";

import { DecompressionError } from "./errors.js";

export const MAX_PLAINTEXT_BYTES = 512 * 1024 * 1024;
export const CODEC_NONE = 0;
export const CODEC_ZSTD = 1;

class TooLong extends Error {}

export function decompress(payload: Uint8Array, codec: number, plaintextLen: number):
  Uint8Array {
  if (!(plaintextLen >= 0 && plaintextLen <= MAX_PLAINTEXT_BYTES)) {
    throw new DecompressionError(`stated plaintext length ${plaintextLen} is out of bounds`);
  }
  if (codec === CODEC_NONE) {
    if (payload.length !== plaintextLen) {
      throw new DecompressionError(`uncompressed payload is ${payload.length} bytes, header ` +
        `says ${plaintextLen}`);
    }
    return payload;
  }
  const out = new Uint8Array(plaintextLen);
  let at = 0;
  const stream = new Decompress((chunk) => {
    if (at + chunk.length > plaintextLen) throw new TooLong();
    out.set(chunk, at);
    at += chunk.length;
  });
  try {
    stream.push(payload, true);
  } catch (e) {
    if (e instanceof TooLong) {
      throw new DecompressionError("zstd payload decompresses to more than the " +
        `${plaintextLen} bytes its header states`);
    }
    throw new DecompressionError(`zstd payload is corrupt: ${(e as Error).message}`);
  }
  if (at < plaintextLen) {
    throw new DecompressionError(`zstd payload decompresses to ${at} bytes, header says ` +
      `${plaintextLen}`);
  }
  return out;
}
