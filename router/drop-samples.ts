/**
 * The addresses of the last packet dropped for each reason, so the rate-limited drop log can say
 * which flow it was ("no_route 12, last 10.244.1.5 -> 10.244.7.9"). Recording copies two
 * addresses into storage allocated once; nothing is allocated per dropped packet. Reading
 * (once a second, from the drop log) formats them.
 */
import { formatAddress } from '../core/cidr.js';
import { DROP_REASON_COUNT, DROP_REASON_NAMES } from '../core/drop-reason.js';
import type { DropReason } from '../core/drop-reason.js';
import type { PacketView } from './packet-view.js';

/** Source then destination, 16 bytes each (IPv4 in the first 4). */
const SLOT_BYTES = 32;

export interface DropSample {
  readonly src: string;
  readonly dst: string;
}

export class DropSamples {
  private readonly families = new Uint8Array(DROP_REASON_COUNT);
  private readonly addresses = new Uint8Array(DROP_REASON_COUNT * SLOT_BYTES);

  /** The packet `view` describes (parsed from `buf`) was dropped for `reason`. */
  record(reason: DropReason, buf: Uint8Array, view: PacketView): void {
    const len = view.version === 4 ? 4 : 16;
    const at = reason * SLOT_BYTES;
    this.addresses.set(buf.subarray(view.srcOff, view.srcOff + len), at);
    this.addresses.set(buf.subarray(view.dstOff, view.dstOff + len), at + 16);
    this.families[reason] = view.version;
  }

  /** The last sample of the reason named `name` ("no_route"), if one was recorded. */
  last(name: string): DropSample | undefined {
    const reason = DROP_REASON_NAMES.indexOf(name);
    const version = reason < 0 ? 0 : this.families[reason];
    if (version !== 4 && version !== 6) return undefined;
    const at = reason * SLOT_BYTES;
    const len = version === 4 ? 4 : 16;
    const family = version;
    return {
      src: formatAddress({ family, bytes: this.addresses.slice(at, at + len) }),
      dst: formatAddress({ family, bytes: this.addresses.slice(at + 16, at + 16 + len) }),
    };
  }
}
