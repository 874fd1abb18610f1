/**
 * The UDP transport as it registers: endpoint "ip:port" or "name:port" (`endpoint` in a node
 * entry; a name is kept resolved by the transport, tunnel/endpoint-resolver.ts), settings =
 * the top-level `listen` "host:port" (default 0.0.0.0:8285). Sealed (the default) or not, it
 * counts the sealed overhead, 60 bytes over IPv4 and 80 over IPv6 (as WireGuard's), so the TUN MTU
 * does not depend on the `encryption` setting and both ends of a cluster agree on it.
 */
import { hostPortAt } from '../../core/config-check.js';
import type { HostPort } from '../../core/config-check.js';
import { formatEndpoint, isNamedEndpoint, parseEndpointOrName } from '../../core/endpoint.js';
import type { TransportType } from '../transport-type.js';
import { SEALED_UDP_OVERHEAD_IPV4, SEALED_UDP_OVERHEAD_IPV6 } from '../seal/sealed-format.js';

export const DEFAULT_UDP_LISTEN = '0.0.0.0:8285';

export const udpTransportType: TransportType<HostPort> = {
  kind: 'udp',
  endpointKey: 'endpoint',
  parseEndpoint(text) {
    const endpoint = parseEndpointOrName(text);
    // A name's family is known only once it resolves: it does not size the MTU.
    if (isNamedEndpoint(endpoint)) return { text: formatEndpoint(endpoint.name, endpoint.port), family: undefined };
    return { text: formatEndpoint(endpoint.host, endpoint.port), family: endpoint.family };
  },
  overheadBytes: (family) => (family === 6 ? SEALED_UDP_OVERHEAD_IPV6 : SEALED_UDP_OVERHEAD_IPV4),
  settingsKey: 'listen',
  validateSettings: (value, ctx) => hostPortAt(value ?? DEFAULT_UDP_LISTEN, 'listen', ctx.issue),
  // A wildcard listener takes either family's traffic; a specific address binds one.
  boundFamily: (listen) => (listen.family === 6 && listen.host !== '::' ? 6 : undefined),
  listenAddress: (listen) => listen,
  listenSetting: 'listen',
  // A wildcard says nothing a peer could dial.
  defaultEndpoint: (listen) => (listen.host === '0.0.0.0' || listen.host === '::' ? undefined : listen.text),
  endpointAt: (listen, host) => formatEndpoint(host, listen.port),
  async create(listen, ctx) {
    const options = {
      listen: listen.text,
      localNode: ctx.localNode,
      clusterSecret: ctx.clusterSecret,
      resolveIntervalMs: ctx.resolveIntervalMs,
      ownership: ctx.ownership,
      log: ctx.log,
    };
    if (ctx.nodeKey !== undefined) {
      const { SealedUdpTransport } = await import('./sealed-udp-transport.js');
      const { addon } = await import('../../native/addon.js');
      return new SealedUdpTransport({ ...options, nodeKey: ctx.nodeKey, cpuHasAesHw: addon.cpuHasAesHw });
    }
    const { UdpTransport } = await import('./udp-transport.js');
    return new UdpTransport(options);
  },
};
