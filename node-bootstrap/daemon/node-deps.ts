/**
 * The real collaborators of `podtun run`: the TUN device (native addon), the transports as their
 * types make them, and the router. Imported lazily by the CLI, so `podtun --help` never loads
 * the addon.
 */
import { addon } from '../../native/addon.js';
import { Router } from '../../router/router.js';
import { TunDevice } from '../../router/tun-device.js';
import type { NodeDeps } from './run-node.js';

export const defaultNodeDeps: NodeDeps = {
  openDevice: ({ name }) => TunDevice.open({ name, multiQueue: false }),
  createTransport: (choice, ctx) => choice.create(ctx),
  createRouter: (options) => new Router(options),
  raiseNofileLimit: () => addon.raiseNofileLimit(),
};
