// Errors of the sealing layer, named after recorder/lucid_recorder/sealing/errors.py.

export class SealingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
/** The private key file cannot be used (wrong file, wrong type, encrypted...). */
export class KeyFormatError extends SealingError {}
/** A wrapped data key does not open with the private key given. */
export class UnwrapError extends SealingError {}
/** Not a parseable chunk container. */
export class ChunkFormatError extends SealingError {}
/** AES-GCM rejected a chunk: its bytes were modified. */
export class AuthenticationError extends SealingError {}
/** An authentic payload that does not decompress to what its header states. */
export class DecompressionError extends SealingError {}
