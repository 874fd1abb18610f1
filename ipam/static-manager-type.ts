/**
 * The static subnet manager as it registers (`subnetManager: {type: static}`, the default): the
 * leases are the node config's own `nodes` list, reloaded on edits.
 */
import type { SubnetManagerType } from '../core/subnet-manager.js';
import { StaticSubnetManager } from './static-subnet-manager.js';

export const staticManagerType: SubnetManagerType<Record<string, never>> = {
  type: 'static',
  readsNodeList: true,
  keys: [],
  validate: () => ({}),
  open: (_settings, ctx) =>
    Promise.resolve(new StaticSubnetManager({ node: ctx.node, source: ctx.configLeases, log: ctx.log })),
};
