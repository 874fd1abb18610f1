/**
 * The registered transports, in the default order of preference: a peer whose lease names none
 * is carried over UDP while UDP answers, else over WebSocket. A new transport is one folder and
 * one line here.
 */
import type { TransportKind } from '../core/transport.js';
import { transportEntry } from './transport-type.js';
import type { TransportEntry } from './transport-type.js';
import { udpTransportType } from './udp/udp-transport-type.js';
import { wsTransportType } from './ws/ws-transport-type.js';

export const TRANSPORTS: readonly TransportEntry[] = [
  transportEntry(udpTransportType),
  transportEntry(wsTransportType),
];

/** The preference of a peer whose lease says nothing: every registered transport, in order. */
export const DEFAULT_TRANSPORTS: readonly TransportKind[] = TRANSPORTS.map((t) => t.kind);

export function transportOf(kind: TransportKind): TransportEntry | undefined {
  return TRANSPORTS.find((t) => t.kind === kind);
}
