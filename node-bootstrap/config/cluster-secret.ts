/**
 * The cluster secret as the config holds it: the bytes, kept out of JSON, logs and inspection
 * (`toJSON` and `util.inspect` print "[redacted]"), so a dumped config never leaks it.
 */
import { timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

export class ClusterSecret {
  readonly #bytes: Buffer;

  constructor(bytes: Uint8Array) {
    this.#bytes = Buffer.from(bytes);
  }

  get length(): number {
    return this.#bytes.length;
  }

  /** A copy of the secret, for a transport to keep. */
  bytes(): Buffer {
    return Buffer.from(this.#bytes);
  }

  equals(other: ClusterSecret): boolean {
    const theirs = other.#bytes;
    return theirs.length === this.#bytes.length && timingSafeEqual(theirs, this.#bytes);
  }

  toJSON(): string {
    return '[redacted]';
  }

  toString(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return 'ClusterSecret [redacted]';
  }
}
