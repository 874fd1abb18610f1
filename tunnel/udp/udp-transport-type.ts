/**
 * The UDP transport as it registers: endpoint "ip:port" (`endpoint` in a node entry), settings =
 * the top-level `listen` "host:port" (default 0.0.0.0:8285), 40 bytes of overhead over IPv4, 60
 * over IPv6.
 */
import { hostPortAt } from '../../core/config-check.js';
import type { HostPort } from '../../core/config-check.js';
import { formatEndpoint, parseEndpoint } from '../../core/endpoint.js';
import type { TransportType } from '../transport-type.js';
import { UDP_OVERHEAD_IPV4, UDP_OVERHEAD_IPV6 } from './udp-header.js';

export const DEFAULT_UDP_LISTEN = '0.0.0.0:8285';

export const udpTransportType: TransportType<HostPort> = {
  kind: 'udp',
  endpointKey: 'endpoint',
  parseEndpoint(text) {
    const { host, port, family } = parseEndpoint(text);
    return { text: formatEndpoint(host, port), family };
  },
  overheadBytes: (family) => (family === 6 ? UDP_OVERHEAD_IPV6 : UDP_OVERHEAD_IPV4),
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
    const { UdpTransport } = await import('./udp-transport.js');
    return new UdpTransport({ listen: listen.text, localNode: ctx.localNode, clusterSecret: ctx.clusterSecret, log: ctx.log });
  },
};
