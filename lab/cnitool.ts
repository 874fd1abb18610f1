/**
 * A real CNI runtime client for the tests: `cnitool add|check|del NET NETNS`, built offline from
 * Debian's libcni (golang-github-appc-cni-dev, GOPATH mode) with Debian's Go. Debian ships the
 * library but not upstream's cnitool main package, so this file carries a small driver with the
 * same command line: env CNI_PATH, NETCONFPATH, CNI_IFNAME (default eth0), CNI_ARGS ("K=V;K=V");
 * container ID "cnitool-" + the first 10 bytes of sha512(netns path), hex.
 *
 * Built once per machine into the OS temp dir (keyed by the driver's hash), then reused.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './shell.js';
import { hasCommand } from './requirements.js';

const LIBCNI_DIR = '/usr/share/gocode/src/github.com/containernetworking/cni/libcni';
const BUILD_TIMEOUT_MS = 180_000;

const DRIVER = `package main

import (
	"context"
	"crypto/sha512"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: cnitool add|check|del NET NETNS")
		os.Exit(2)
	}
	confDir := os.Getenv("NETCONFPATH")
	if confDir == "" {
		confDir = "/etc/cni/net.d"
	}
	list, err := libcni.LoadConfList(confDir, os.Args[2])
	if err != nil {
		fail(err)
	}
	var args [][2]string
	if v := os.Getenv("CNI_ARGS"); v != "" {
		for _, pair := range strings.Split(v, ";") {
			kv := strings.SplitN(pair, "=", 2)
			if len(kv) != 2 {
				fail(fmt.Errorf("CNI_ARGS: %q is not K=V", pair))
			}
			args = append(args, [2]string{kv[0], kv[1]})
		}
	}
	ifName := os.Getenv("CNI_IFNAME")
	if ifName == "" {
		ifName = "eth0"
	}
	netns, err := filepath.Abs(os.Args[3])
	if err != nil {
		fail(err)
	}
	sum := sha512.Sum512([]byte(netns))
	rt := &libcni.RuntimeConf{ContainerID: fmt.Sprintf("cnitool-%x", sum[:10]), NetNS: netns, IfName: ifName, Args: args}
	cni := libcni.NewCNIConfig(filepath.SplitList(os.Getenv("CNI_PATH")), nil)
	ctx := context.Background()
	switch os.Args[1] {
	case "add":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		if err := res.Print(); err != nil {
			fail(err)
		}
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}
`;

/** Why cnitool cannot be built here, or undefined. */
export function cnitoolSkipReason(): string | undefined {
  if (!hasCommand('go')) return '`go` is missing (Debian package golang-go)';
  if (!existsSync(LIBCNI_DIR)) return 'libcni is missing (Debian package golang-github-appc-cni-dev)';
  return undefined;
}

/** Path of a built cnitool (built on first use). */
export async function ensureCnitool(): Promise<string> {
  const key = createHash('sha256').update(DRIVER).digest('hex').slice(0, 12);
  const dir = join(tmpdir(), 'podtun-cnitool');
  const bin = join(dir, `cnitool-${key}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const work = mkdtempSync(join(dir, 'build-'));
  try {
    const src = join(work, 'src', 'cnitool');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'main.go'), DRIVER);
    const out = join(work, 'cnitool');
    await run(['go', 'build', '-o', out, '.'], {
      cwd: src,
      timeoutMs: BUILD_TIMEOUT_MS,
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        HOME: work,
        GOPATH: `${work}:/usr/share/gocode`,
        GO111MODULE: 'off',
        GOPROXY: 'off',
        GOFLAGS: '',
        GOCACHE: join(dir, 'gocache'),
        CGO_ENABLED: '0',
      },
    });
    // Rename: a concurrent builder never sees a half-written binary.
    renameSync(out, bin);
    return bin;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
