/**
 * A path-compressed binary trie (as wireguard-go's allowedips): each node holds a prefix; a
 * node without a value exists only to split two subtrees, so it always has both children.
 * Lookups walk at most one node per distinct prefix length on the path and allocate nothing;
 * IPv4 nodes also keep their prefix as a number so IPv4 lookups compare whole words.
 */
import type { Cidr, IpFamily } from '../core/cidr.js';
import type { RouteEntry, RouteTable } from './route-table.js';

class TrieNode<T> {
  /** Prefix bytes with host bits zero (4 or 16 bytes). Owned by the node. */
  readonly bytes: Uint8Array;
  readonly bits: number;
  /** IPv4: the prefix and its netmask as unsigned numbers. */
  readonly key4: number;
  readonly mask4: number;
  child0: TrieNode<T> | null = null;
  child1: TrieNode<T> | null = null;
  hasValue = false;
  value: T | undefined = undefined;
  cidr: Cidr | undefined = undefined;

  constructor(bytes: Uint8Array, bits: number) {
    this.bytes = maskedCopy(bytes, bits);
    this.bits = bits;
    if (bytes.length === 4) {
      this.key4 = ((this.bytes[0]! << 24) | (this.bytes[1]! << 16) | (this.bytes[2]! << 8) | this.bytes[3]!) >>> 0;
      this.mask4 = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    } else {
      this.key4 = 0;
      this.mask4 = 0;
    }
  }
}

export class TrieRouteTable<T> implements RouteTable<T> {
  private root4: TrieNode<T> | null = null;
  private root6: TrieNode<T> | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  insert(cidr: Cidr, value: T): void {
    const key = cidr.bytes;
    const bits = cidr.prefixLen;
    let parent: TrieNode<T> | null = null;
    let dir = 0;
    let node = this.root(cidr.family);
    while (node !== null) {
      const common = Math.min(commonBits(node.bytes, key), node.bits, bits);
      if (common === node.bits) {
        if (node.bits === bits) {
          if (!node.hasValue) this.count++;
          setValue(node, cidr, value);
          return;
        }
        parent = node;
        dir = bitAt(key, 0, node.bits);
        node = dir === 0 ? node.child0 : node.child1;
        continue;
      }
      const fresh = new TrieNode<T>(key, bits);
      setValue(fresh, cidr, value);
      this.count++;
      if (common === bits) {
        setChild(fresh, bitAt(node.bytes, 0, bits), node);
        this.link(cidr.family, parent, dir, fresh);
        return;
      }
      const split = new TrieNode<T>(key, common);
      setChild(split, bitAt(node.bytes, 0, common), node);
      setChild(split, bitAt(key, 0, common), fresh);
      this.link(cidr.family, parent, dir, split);
      return;
    }
    const fresh = new TrieNode<T>(key, bits);
    setValue(fresh, cidr, value);
    this.count++;
    this.link(cidr.family, parent, dir, fresh);
  }

  remove(cidr: Cidr): boolean {
    const key = cidr.bytes;
    const bits = cidr.prefixLen;
    let grandparent: TrieNode<T> | null = null;
    let grandparentDir = 0;
    let parent: TrieNode<T> | null = null;
    let parentDir = 0;
    let node = this.root(cidr.family);
    while (node !== null) {
      if (node.bits > bits || commonBits(node.bytes, key) < node.bits) return false;
      if (node.bits === bits) break;
      grandparent = parent;
      grandparentDir = parentDir;
      parent = node;
      parentDir = bitAt(key, 0, node.bits);
      node = parentDir === 0 ? node.child0 : node.child1;
    }
    if (node === null || !node.hasValue) return false;
    node.hasValue = false;
    node.value = undefined;
    node.cidr = undefined;
    this.count--;
    if (node.child0 !== null && node.child1 !== null) return true;
    const only = node.child0 ?? node.child1;
    this.link(cidr.family, parent, parentDir, only);
    // A valueless parent left with one child no longer splits anything: splice it out too.
    if (only === null && parent !== null && !parent.hasValue) {
      this.link(cidr.family, grandparent, grandparentDir, parent.child0 ?? parent.child1);
    }
    return true;
  }

  /** No allocation: compares whole 32-bit words against each node's prefix. */
  lookup4(addr: number): T | undefined {
    let best: T | undefined;
    let node = this.root4;
    while (node !== null) {
      if (((addr ^ node.key4) & node.mask4) !== 0) break;
      if (node.hasValue) best = node.value;
      if (node.bits === 32) break;
      node = ((addr >>> (31 - node.bits)) & 1) === 0 ? node.child0 : node.child1;
    }
    return best;
  }

  /** No allocation; `buf` is borrowed for the call. Bytes already matched by ancestors are not compared again. */
  lookup6(buf: Uint8Array, off: number): T | undefined {
    let best: T | undefined;
    let node = this.root6;
    let matchedBytes = 0;
    while (node !== null) {
      const bits = node.bits;
      const fullBytes = bits >> 3;
      let i = matchedBytes;
      for (; i < fullBytes; i++) if (buf[off + i] !== node.bytes[i]) break;
      if (i < fullBytes) break;
      const rem = bits & 7;
      if (rem !== 0 && (buf[off + fullBytes]! & ((0xff00 >> rem) & 0xff)) !== node.bytes[fullBytes]) break;
      matchedBytes = fullBytes;
      if (node.hasValue) best = node.value;
      if (bits === 128) break;
      node = ((buf[off + fullBytes]! >> (7 - rem)) & 1) === 0 ? node.child0 : node.child1;
    }
    return best;
  }

  entries(): RouteEntry<T>[] {
    const out: RouteEntry<T>[] = [];
    collect(this.root4, out);
    collect(this.root6, out);
    return out;
  }

  private root(family: IpFamily): TrieNode<T> | null {
    return family === 4 ? this.root4 : this.root6;
  }

  private link(family: IpFamily, parent: TrieNode<T> | null, dir: number, child: TrieNode<T> | null): void {
    if (parent !== null) setChild(parent, dir, child);
    else if (family === 4) this.root4 = child;
    else this.root6 = child;
  }
}

function setValue<T>(node: TrieNode<T>, cidr: Cidr, value: T): void {
  node.hasValue = true;
  node.value = value;
  node.cidr = cidr;
}

function setChild<T>(node: TrieNode<T>, dir: number, child: TrieNode<T> | null): void {
  if (dir === 0) node.child0 = child;
  else node.child1 = child;
}

function collect<T>(node: TrieNode<T> | null, out: RouteEntry<T>[]): void {
  if (node === null) return;
  if (node.hasValue && node.cidr !== undefined) out.push({ cidr: node.cidr, value: node.value as T });
  collect(node.child0, out);
  collect(node.child1, out);
}

function bitAt(bytes: Uint8Array, off: number, bit: number): number {
  return (bytes[off + (bit >> 3)]! >> (7 - (bit & 7))) & 1;
}

/** Number of leading bits `a` and `b` share (same length). */
function commonBits(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]! ^ b[i]!;
    if (x !== 0) return i * 8 + Math.clz32(x) - 24;
  }
  return a.length * 8;
}

function maskedCopy(bytes: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    out[i] = bytes[i]! & ((0xff00 >> keep) & 0xff);
  }
  return out;
}
