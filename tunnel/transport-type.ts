/**
 * How a transport registers (tunnel/transports.ts): described once, its kind, the config keys it
 * owns, how it reads an endpoint, what it costs the MTU, and how it is made. The config loader,
 * the MTU and the daemon's wiring all walk the registry; none names a transport.
 */
import type { OwnershipClaims } from '../core/ownership-claims.js';
import type { IpFamily } from '../core/cidr.js';
import type { BlockContext, HostPort } from '../core/config-check.js';
import type { Logger } from '../core/logger.js';
import type { Transport, TransportKind } from '../core/transport.js';
import type { NodeKeyPair } from './seal/node-key.js';

/** An endpoint as a transport reads it: canonical text, and its address family when it names an address. */
export interface ParsedEndpoint {
  readonly text: string;
  readonly family: IpFamily | undefined;
}

/** What every transport is made with, besides its own settings. */
export interface TransportContext {
  readonly localNode: string;
  /** The cluster secret's bytes (at least MIN_SECRET_BYTES); the transport keeps its own copy. */
  readonly clusterSecret: Uint8Array;
  /** This node's static key pair when tunnels are sealed (`encryption: sealed`); undefined: unsealed. */
  readonly nodeKey: NodeKeyPair | undefined;
  /** The proxy an outgoing connection to `url` goes through, or undefined (the daemon reads the environment). */
  readonly proxyFor: (url: string) => string | undefined;
  /** How often peers' endpoints that name a host are looked up again (`resolveSeconds`). */
  readonly resolveIntervalMs: number;
  /** The claims of subnets each probe carries and checks (core/ownership-claims.ts). */
  readonly ownership: OwnershipClaims;
  readonly log: Logger;
}

export interface TransportType<S> {
  readonly kind: TransportKind;
  /**
   * The key holding this transport's endpoint in a `nodes[]` entry and in `advertise`
   * ('endpoint' for UDP, 'wsEndpoint'); undefined when it has no endpoint of its own.
   */
  readonly endpointKey: string | undefined;
  /** Checks an endpoint as written; throws an Error whose message is the reason. */
  parseEndpoint(text: string): ParsedEndpoint;
  /** Bytes it adds around each inner packet on an underlay of `family` (0: a byte stream that segments itself). */
  overheadBytes(family: IpFamily): number;
  /** The top-level config key of its settings ('listen' for UDP, 'ws'). */
  readonly settingsKey: string;
  /** Validates its settings (undefined when the key is absent: the defaults); reports issues under `settingsKey`. */
  validateSettings(value: unknown, ctx: BlockContext): S | undefined;
  /** The address family its listener is bound to, when the settings name one (sizes the MTU). */
  boundFamily(settings: S): IpFamily | undefined;
  /** Where a node with these settings accepts connections; undefined: it only dials out. */
  listenAddress(settings: S): HostPort | undefined;
  /** The config path of that listener, for messages ('listen', 'ws.listen'). */
  readonly listenSetting: string;
  /** The endpoint a node advertises when it names none: its listener, when that is a dialable address and form. */
  defaultEndpoint(settings: S): string | undefined;
  /** Where its listener is reached at the node address `host` (a Kubernetes Node's InternalIP); undefined: it does not listen. */
  endpointAt(settings: S, host: string): string | undefined;
  /** Loads the implementation on first use, so reading a config never loads `ws` or the addon. */
  create(settings: S, ctx: TransportContext): Promise<Transport>;
}

/** Validated settings bound to their type, as the config holds them. */
export interface TransportChoice {
  readonly kind: TransportKind;
  /** Where its settings are in the config ('listen', 'ws'). */
  readonly settingsKey: string;
  readonly settings: unknown;
  readonly boundFamily: IpFamily | undefined;
  readonly listenAddress: HostPort | undefined;
  readonly defaultEndpoint: string | undefined;
  endpointAt(host: string): string | undefined;
  create(ctx: TransportContext): Promise<Transport>;
}

/** A registry entry: the type with its settings type erased behind validate -> choice. */
export interface TransportEntry {
  readonly kind: TransportKind;
  readonly endpointKey: string | undefined;
  readonly settingsKey: string;
  readonly listenSetting: string;
  parseEndpoint(text: string): ParsedEndpoint;
  overheadBytes(family: IpFamily): number;
  validate(value: unknown, ctx: BlockContext): TransportChoice | undefined;
}

export function transportEntry<S>(t: TransportType<S>): TransportEntry {
  return {
    kind: t.kind,
    endpointKey: t.endpointKey,
    settingsKey: t.settingsKey,
    listenSetting: t.listenSetting,
    parseEndpoint: (text) => t.parseEndpoint(text),
    overheadBytes: (family) => t.overheadBytes(family),
    validate(value, ctx) {
      const settings = t.validateSettings(value, ctx);
      if (settings === undefined) return undefined;
      return {
        kind: t.kind,
        settingsKey: t.settingsKey,
        settings,
        boundFamily: t.boundFamily(settings),
        listenAddress: t.listenAddress(settings),
        defaultEndpoint: t.defaultEndpoint(settings),
        endpointAt: (host) => t.endpointAt(settings, host),
        create: (createCtx) => t.create(settings, createCtx),
      };
    },
  };
}
