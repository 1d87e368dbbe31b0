// Decoder errors, as in recorder/lucid_recorder/format/errors.py: each names the byte
// offset where the segment stopped making sense, and the message starts "at byte N: ".
// `kind` is the Python class name (class names do not survive minification).

export type FormatErrorKind =
  | "BadMagic"
  | "UnsupportedVersion"
  | "Truncated"
  | "UnknownRecordType"
  | "OutOfBounds"
  | "LengthMismatch"
  | "TimeWentBackwards"
  | "BadValue";

export class FormatError extends Error {
  readonly kind: FormatErrorKind;
  readonly offset: number;
  readonly detail: string;

  constructor(kind: FormatErrorKind, offset: number, detail: string) {
    super(`at byte ${offset}: ${detail}`);
    this.name = "FormatError";
    this.kind = kind;
    this.offset = offset;
    this.detail = detail;
  }
}

export const badMagic = (at: number, m: string) => new FormatError("BadMagic", at, m);
export const unsupportedVersion = (at: number, m: string) =>
  new FormatError("UnsupportedVersion", at, m);
export const truncated = (at: number, m: string) => new FormatError("Truncated", at, m);
export const unknownRecordType = (at: number, m: string) =>
  new FormatError("UnknownRecordType", at, m);
export const outOfBounds = (at: number, m: string) => new FormatError("OutOfBounds", at, m);
export const lengthMismatch = (at: number, m: string) => new FormatError("LengthMismatch", at, m);
export const timeWentBackwards = (at: number, m: string) =>
  new FormatError("TimeWentBackwards", at, m);
export const badValue = (at: number, m: string) => new FormatError("BadValue", at, m);
