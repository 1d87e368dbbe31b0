// The auditor's private key file, as `lucid-seal keygen` writes it: PEM PKCS#8 X25519,
// optionally encrypted with a passphrase (PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC, what
// the Python `cryptography` package writes). Everything here runs in the page; the key's
// bytes are zeroed once WebCrypto holds the key (keys.ts).

import { own } from "./bytes.js";
import { KeyFormatError } from "./errors.js";

const OID = {
  x25519: "1.3.101.110",
  ed25519: "1.3.101.112",
  x448: "1.3.101.111",
  ed448: "1.3.101.113",
  rsa: "1.2.840.113549.1.1.1",
  ec: "1.2.840.10045.2.1",
  pbes2: "1.2.840.113549.1.5.13",
  pbkdf2: "1.2.840.113549.1.5.12",
  hmacSha1: "1.2.840.113549.2.7",
  hmacSha256: "1.2.840.113549.2.9",
  hmacSha384: "1.2.840.113549.2.10",
  hmacSha512: "1.2.840.113549.2.11",
  aes128cbc: "2.16.840.1.101.3.4.1.2",
  aes192cbc: "2.16.840.1.101.3.4.1.22",
  aes256cbc: "2.16.840.1.101.3.4.1.42",
} as const;

const KEY_NAMES: Record<string, string> = {
  [OID.ed25519]: "Ed25519", [OID.x448]: "X448", [OID.ed448]: "Ed448", [OID.rsa]: "RSA",
  [OID.ec]: "EC",
};

interface Tlv {
  tag: number;
  body: Uint8Array;
  end: number;
}

function tlv(d: Uint8Array, at: number): Tlv {
  if (at + 2 > d.length) throw new Error("short DER");
  const tag = d[at]!;
  let len = d[at + 1]!;
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 3 || p + n > d.length) throw new Error("bad DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + d[p++]!;
  }
  if (p + len > d.length) throw new Error("DER runs past its end");
  return { tag, body: d.subarray(p, p + len), end: p + len };
}

function children(body: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  for (let at = 0; at < body.length;) {
    const t = tlv(body, at);
    out.push(t);
    at = t.end;
  }
  return out;
}

function oid(t: Tlv): string {
  if (t.tag !== 0x06 || t.body.length === 0) throw new Error("expected an OID");
  const b = t.body;
  const parts = [Math.floor(b[0]! / 40), b[0]! % 40];
  let v = 0;
  for (let i = 1; i < b.length; i++) {
    v = v * 128 + (b[i]! & 0x7f);
    if (!(b[i]! & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join(".");
}

function integer(t: Tlv): number {
  if (t.tag !== 0x02) throw new Error("expected an INTEGER");
  let v = 0;
  for (const x of t.body) v = v * 256 + x;
  return v;
}

export interface PemKey {
  label: "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY";
  der: Uint8Array;
}

export function readPem(text: string): PemKey {
  if (/-----BEGIN (X25519 )?PUBLIC KEY-----/.test(text) && !/PRIVATE KEY/.test(text)) {
    throw new KeyFormatError("this is a public key (public.pem); the player needs the " +
      "auditor's private key (private.pem from `lucid-seal keygen`)");
  }
  const m = /-----BEGIN ((?:ENCRYPTED )?PRIVATE KEY)-----([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) {
    const other = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text);
    throw new KeyFormatError(other
      ? `this PEM file holds a "${other[1]}", not a PKCS#8 private key (expected ` +
        "private.pem from `lucid-seal keygen`)"
      : "not a PEM private key file (expected private.pem from `lucid-seal keygen`, which " +
        "starts with -----BEGIN PRIVATE KEY-----)");
  }
  let der: Uint8Array;
  try {
    const bin = atob(m[2]!.replace(/\s+/g, ""));
    der = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) der[i] = bin.charCodeAt(i);
  } catch {
    throw new KeyFormatError("the PEM private key is damaged (its base64 does not decode)");
  }
  return { label: m[1] as PemKey["label"], der };
}

/** The algorithm of a PKCS#8 PrivateKeyInfo; refuses anything but X25519, by name. */
export function checkX25519(der: Uint8Array): void {
  let algorithm: string;
  try {
    const top = tlv(der, 0);
    const [version, alg] = children(top.body);
    if (top.tag !== 0x30 || !version || !alg || alg.tag !== 0x30) throw new Error("shape");
    algorithm = oid(children(alg.body)[0]!);
  } catch {
    throw new KeyFormatError("the private key is not a readable PKCS#8 key (wrong file, or " +
      "wrong passphrase)");
  }
  if (algorithm !== OID.x25519) {
    const name = KEY_NAMES[algorithm] ?? `OID ${algorithm}`;
    throw new KeyFormatError(`the private key is a ${name} key, expected X25519 (from ` +
      "`lucid-seal keygen`)");
  }
}

const HASHES: Record<string, string> = {
  [OID.hmacSha1]: "SHA-1", [OID.hmacSha256]: "SHA-256", [OID.hmacSha384]: "SHA-384",
  [OID.hmacSha512]: "SHA-512",
};
const CIPHERS: Record<string, number> = {
  [OID.aes128cbc]: 128, [OID.aes192cbc]: 192, [OID.aes256cbc]: 256,
};

/** Decrypt an EncryptedPrivateKeyInfo (PBES2) with the passphrase: the inner PKCS#8 DER. */
export async function decryptPkcs8(der: Uint8Array, passphrase: string): Promise<Uint8Array> {
  let salt: Uint8Array, iterations: number, hash: string, bits: number, iv: Uint8Array;
  let data: Uint8Array;
  try {
    const [alg, enc] = children(tlv(der, 0).body);
    const [scheme, params] = children(alg!.body);
    if (oid(scheme!) !== OID.pbes2) throw new KeyFormatError("unsupported");
    const [kdf, cipher] = children(params!.body);
    const [kdfOid, kdfParams] = children(kdf!.body);
    if (oid(kdfOid!) !== OID.pbkdf2) throw new KeyFormatError("unsupported");
    const p = children(kdfParams!.body);
    salt = p[0]!.body;
    iterations = integer(p[1]!);
    const prf = p.find((t, i) => i >= 2 && t.tag === 0x30);
    hash = prf ? HASHES[oid(children(prf.body)[0]!)] ?? "" : "SHA-1";
    const [cipherOid, ivT] = children(cipher!.body);
    bits = CIPHERS[oid(cipherOid!)] ?? 0;
    iv = ivT!.body;
    data = enc!.body;
    if (!hash || !bits) throw new KeyFormatError("unsupported");
  } catch (e) {
    throw new KeyFormatError(e instanceof KeyFormatError
      ? "the private key is encrypted in a way the player does not read (it reads PBES2 " +
        "with PBKDF2 and AES-CBC, as `lucid-seal keygen --passphrase-from-env` writes)"
      : "the encrypted private key is damaged");
  }
  const s = crypto.subtle;
  const pass = await s.importKey("raw", new TextEncoder().encode(passphrase), "PBKDF2", false,
    ["deriveKey"]);
  const kek = await s.deriveKey({ name: "PBKDF2", salt: own(salt), iterations, hash }, pass,
    { name: "AES-CBC", length: bits }, false, ["decrypt"]);
  try {
    return new Uint8Array(await s.decrypt({ name: "AES-CBC", iv: own(iv) }, kek, own(data)));
  } catch {
    throw new KeyFormatError("wrong passphrase for the private key");
  }
}
