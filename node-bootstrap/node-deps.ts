/**
 * The real collaborators of `podtun run`: the TUN device (native addon), the UDP and WebSocket
 * transports and the router. Imported lazily by the CLI, so `podtun --help` never loads the
 * addon or `ws`.
 */
import { Router } from '../router/router.js';
import { TunDevice } from '../router/tun-device.js';
import { UdpTransport } from '../tunnel/udp-transport.js';
import { WsTransport } from '../tunnel/ws-transport.js';
import type { NodeDeps } from './run-node.js';

export const defaultNodeDeps: NodeDeps = {
  openDevice: ({ name }) => TunDevice.open({ name, multiQueue: false }),
  createUdpTransport: (options) => new UdpTransport(options),
  createWsTransport: (options) => new WsTransport(options),
  createRouter: (options) => new Router(options),
};
