/**
 * The WebSocket transport as it registers: endpoint "ws(s)://host:port" (`wsEndpoint` in a node
 * entry), settings = the `ws` block (listen, tls, caFile; absent: dial out only), no MTU overhead
 * (TCP segments the stream itself).
 */
import type { WsTransportOptions } from './ws-options.js';
import { parseAddress } from '../../core/cidr.js';
import type { IpFamily } from '../../core/cidr.js';
import { blockIssues, checkKnownKeys, describe, filePathAt, hostPortAt, isAbsent, isRecord, urlAt } from '../../core/config-check.js';
import type { HostPort } from '../../core/config-check.js';
import type { TransportType } from '../transport-type.js';

/** The `ws` block; file paths are absolute. */
export interface WsSettings {
  /** "host:port" to accept connections on; undefined: this node only dials out. */
  readonly listen: HostPort | undefined;
  /** Certificate and key for the listener (wss); undefined: plain ws. */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  /** CA bundle to trust when dialing wss peers (default: the system's). */
  readonly caFile: string | undefined;
}

const WS_KEYS = ['listen', 'tls', 'caFile'] as const;
const TLS_KEYS = ['certFile', 'keyFile'] as const;
const WS_ENDPOINT_FORM = '"ws://host:port" or "wss://host:port"';

export const wsTransportType: TransportType<WsSettings> = {
  kind: 'ws',
  endpointKey: 'wsEndpoint',
  parseEndpoint(text) {
    let reason: string | undefined;
    const checked = urlAt(text, '', ['ws:', 'wss:'], WS_ENDPOINT_FORM, (_path, why) => {
      reason = why;
      return undefined;
    }, { path: true });
    if (checked === undefined) throw new Error(reason ?? `expected ${WS_ENDPOINT_FORM}`);
    return { text: checked, family: hostFamily(new URL(checked).hostname) };
  },
  overheadBytes: () => 0,
  settingsKey: 'ws',
  validateSettings(value, ctx) {
    if (isAbsent(value)) return { listen: undefined, tls: undefined, caFile: undefined };
    if (!isRecord(value)) return ctx.issue('ws', `expected a mapping (listen, tls, caFile), got ${describe(value)}`);
    const { issue, bad } = blockIssues(ctx.issue);
    checkKnownKeys(value, 'ws', WS_KEYS, issue);
    const listen = value['listen'] === undefined ? undefined : hostPortAt(value['listen'], 'ws.listen', issue);
    let tls: WsSettings['tls'];
    const rawTls = value['tls'];
    if (rawTls !== undefined) {
      if (!isRecord(rawTls)) issue('ws.tls', `expected a mapping (certFile, keyFile), got ${describe(rawTls)}`);
      else {
        checkKnownKeys(rawTls, 'ws.tls', TLS_KEYS, issue);
        const certFile = filePathAt(rawTls['certFile'], 'ws.tls.certFile', ctx.baseDir, issue, true);
        const keyFile = filePathAt(rawTls['keyFile'], 'ws.tls.keyFile', ctx.baseDir, issue, true);
        if (certFile !== undefined && keyFile !== undefined) tls = { certFile, keyFile };
        if (value['listen'] === undefined) issue('ws.tls', 'only used by the listener: set ws.listen too, or drop ws.tls');
      }
    }
    const caFile = filePathAt(value['caFile'], 'ws.caFile', ctx.baseDir, issue, false);
    return bad() ? undefined : { listen, tls, caFile };
  },
  boundFamily: () => undefined,
  listenAddress: (settings) => settings.listen,
  listenSetting: 'ws.listen',
  // A URL needs a scheme (ws or wss behind a TLS proxy) and a name that TLS checks: not guessed.
  defaultEndpoint: () => undefined,
  endpointAt: (settings, host) =>
    settings.listen === undefined
      ? undefined
      : `${settings.tls === undefined ? 'ws' : 'wss'}://${host.includes(':') ? `[${host}]` : host}:${settings.listen.port}`,
  async create(settings, ctx) {
    const { WsTransport } = await import('./ws-transport.js');
    let sealing: WsTransportOptions['sealing'];
    if (ctx.nodeKey !== undefined) {
      const { addon } = await import('../../native/addon.js');
      sealing = { nodeKey: ctx.nodeKey, sealer: addon.openSealer(), cpuHasAesHw: addon.cpuHasAesHw };
    }
    return new WsTransport({
      ...(sealing === undefined ? {} : { sealing }),
      localNode: ctx.localNode,
      listen: settings.listen?.text,
      ...(settings.tls === undefined ? {} : { tls: { ...settings.tls } }),
      ...(settings.caFile === undefined ? {} : { caFile: settings.caFile }),
      clusterSecret: ctx.clusterSecret,
      proxyFor: ctx.proxyFor,
      ownership: ctx.ownership,
      log: ctx.log,
    });
  },
};

/** The family of a URL host that is an address literal ("[fd00::1]" included); undefined for a name. */
function hostFamily(hostname: string): IpFamily | undefined {
  try {
    return parseAddress(hostname.replace(/^\[(.*)\]$/, '$1')).family;
  } catch {
    return undefined;
  }
}
