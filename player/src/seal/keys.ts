// Recipient keys and the unwrapping of per-epoch data keys: the page's side of
// recorder/lucid_recorder/sealing/keys.py. X25519 with the ephemeral key, HKDF-SHA256
// (salt = ephemeral || recipient public key, info = "lucid/v1/data-key-wrap\0" || epoch ||
// session UID), then AES-256-GCM with a zero nonce and the same info as associated data.
// Every CryptoKey made here is non-extractable: the private key and the data keys stay
// inside WebCrypto.

import { concat, own, sha256, toHex, utf8 } from "./bytes.js";
import { KeyFormatError, UnwrapError } from "./errors.js";
import { checkX25519, decryptPkcs8, readPem } from "./pem.js";

export const DATA_KEY_BYTES = 32;
export const WRAPPED_KEY_BYTES = DATA_KEY_BYTES + 16;
export const X25519_BYTES = 32;
const WRAP_LABEL = utf8.encode("lucid/v1/data-key-wrap\0");
const WRAP_NONCE = new Uint8Array(12);
// u = 9: X25519(k, base point) is the public key of k, which WebCrypto will not export
// from a non-extractable private key.
const BASE_POINT = new Uint8Array(32);
BASE_POINT[0] = 9;

export interface KeyRecord {
  epoch: number;
  recipientFingerprint: Uint8Array;
  ephemeralPublicKey: Uint8Array;
  wrappedKey: Uint8Array;
  /** The recorder run's raw ed25519 public key (chunk format 2); empty in format 1. */
  signer?: Uint8Array;
}

/** What a wrapped key is bound to besides its epoch (format 2: namespace and name too). */
export interface WrapSession {
  uid: string;
  namespace?: string;
  name?: string;
}

export const sameRecord = (a: KeyRecord, b: KeyRecord): boolean =>
  a.epoch === b.epoch && toHex(a.recipientFingerprint) === toHex(b.recipientFingerprint) &&
  toHex(a.ephemeralPublicKey) === toHex(b.ephemeralPublicKey) &&
  toHex(a.wrappedKey) === toHex(b.wrappedKey) &&
  toHex(a.signer ?? new Uint8Array()) === toHex(b.signer ?? new Uint8Array());

export const recordId = (r: KeyRecord): string =>
  `${r.epoch}:${toHex(r.recipientFingerprint)}:${toHex(r.ephemeralPublicKey)}:` +
  `${toHex(r.wrappedKey)}:${toHex(r.signer ?? new Uint8Array())}`;

export const shortFingerprint = (fpr: Uint8Array): string => toHex(fpr).slice(0, 16);

/** The auditor's key as the page holds it: a non-extractable CryptoKey and public facts. */
export interface RecipientKey {
  privateKey: CryptoKey;
  publicKey: Uint8Array;
  fingerprint: Uint8Array;
}

export class PassphraseNeeded extends KeyFormatError {}

/**
 * Import the key file's text. Encrypted keys need `passphrase` (PassphraseNeeded without).
 * The DER bytes are zeroed after the import; the file's text is the caller's to drop.
 */
export async function importPrivateKey(pemText: string, passphrase?: string):
  Promise<RecipientKey> {
  const pem = readPem(pemText);
  let der = pem.der;
  if (pem.label === "ENCRYPTED PRIVATE KEY") {
    if (!passphrase) {
      throw new PassphraseNeeded("the private key is protected by a passphrase: enter it");
    }
    const inner = await decryptPkcs8(der, passphrase);
    der.fill(0);
    der = inner;
  }
  try {
    checkX25519(der);
    let privateKey: CryptoKey;
    try {
      privateKey = await crypto.subtle.importKey("pkcs8", own(der), { name: "X25519" }, false,
        ["deriveBits"]);
    } catch (e) {
      throw new KeyFormatError(`WebCrypto refused the X25519 private key (${String(e)}); ` +
        "this browser may lack X25519 support");
    }
    const base = await crypto.subtle.importKey("raw", BASE_POINT, { name: "X25519" }, true, []);
    const publicKey = new Uint8Array(await crypto.subtle.deriveBits(
      { name: "X25519", public: base }, privateKey, 256));
    return { privateKey, publicKey, fingerprint: await sha256(publicKey) };
  } finally {
    der.fill(0);
  }
}

const WRAP_LABEL_V2 = utf8.encode("lucid/v2/data-key-wrap\0");

// recorder/lucid_recorder/sealing/keys.py: _wrap_context.
function wrapContext(session: WrapSession, epoch: number, signer: Uint8Array): Uint8Array {
  const e = new Uint8Array(4);
  new DataView(e.buffer).setUint32(0, epoch, false);
  if (signer.length === 0) return concat(WRAP_LABEL, e, utf8.encode(session.uid));
  const parts = [session.uid, session.namespace ?? "", session.name ?? ""].map((p) => {
    const b = utf8.encode(p);
    return concat(Uint8Array.of(b.length), b);
  });
  return concat(WRAP_LABEL_V2, e, ...parts, signer);
}

/** The epoch's data key as a non-extractable AES-GCM key; UnwrapError when it does not open. */
export async function unwrapDataKey(record: KeyRecord, key: RecipientKey,
  session: WrapSession | string): Promise<CryptoKey> {
  const bound = typeof session === "string" ? { uid: session } : session;
  const sessionUid = bound.uid;
  const mine = key.fingerprint;
  if (toHex(record.recipientFingerprint) !== toHex(mine)) {
    throw new UnwrapError(`key epoch ${record.epoch} is encrypted to recipient ` +
      `${shortFingerprint(record.recipientFingerprint)}, but the private key given belongs ` +
      `to ${shortFingerprint(mine)}`);
  }
  const context = wrapContext(bound, record.epoch, record.signer ?? new Uint8Array());
  const s = crypto.subtle;
  let raw: Uint8Array | null = null;
  try {
    const peer = await s.importKey("raw", own(record.ephemeralPublicKey), { name: "X25519" },
      true, []);
    // A low-order ephemeral key gives an all-zero secret, which WebCrypto refuses.
    const shared = await s.deriveBits({ name: "X25519", public: peer }, key.privateKey, 256);
    const hkdf = await s.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
    new Uint8Array(shared).fill(0);
    const kek = await s.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: own(concat(record.ephemeralPublicKey, key.publicKey)),
        info: own(context) },
      hkdf, { name: "AES-GCM", length: 256 }, false, ["decrypt"]);
    raw = new Uint8Array(await s.decrypt(
      { name: "AES-GCM", iv: WRAP_NONCE, additionalData: own(context) }, kek,
      own(record.wrappedKey)));
    return await s.importKey("raw", raw as BufferSource, { name: "AES-GCM" }, false,
      ["decrypt"]);
  } catch {
    throw new UnwrapError(`the data key of epoch ${record.epoch} does not open for session ` +
      `${sessionUid}: its key record was altered or copied from another session`);
  } finally {
    raw?.fill(0);
  }
}
