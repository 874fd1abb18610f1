/**
 * The registered subnet managers, by the `subnetManager.type` that picks them. A new manager is
 * one file or folder and one line here.
 */
import { subnetManagerEntry } from '../core/subnet-manager.js';
import type { SubnetManagerEntry } from '../core/subnet-manager.js';
import { etcdManagerType } from './etcd-manager-type.js';
import { kubeManagerType } from './kube/kube-manager-type.js';
import { staticManagerType } from './static-manager-type.js';

export const SUBNET_MANAGERS: readonly SubnetManagerEntry[] = [
  subnetManagerEntry(staticManagerType),
  subnetManagerEntry(etcdManagerType),
  subnetManagerEntry(kubeManagerType),
];

export const DEFAULT_SUBNET_MANAGER = 'static';

export function subnetManagerOf(type: string): SubnetManagerEntry | undefined {
  return SUBNET_MANAGERS.find((m) => m.type === type);
}
