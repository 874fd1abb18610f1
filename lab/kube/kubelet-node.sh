#!/usr/bin/env bash
# One Kubernetes node in a network namespace: containerd (CRI) and kubelet, started by
# lab/kube/kubelet-node.ts as
#   ip netns exec NS unshare --mount --propagation private kubelet-node.sh DIR KUBELET NAME IP
# DIR holds containerd.toml, kubelet.yaml, kubelet.kubeconfig, images.list (image archives) and
# image-tags.list ("NAME EXTRA-NAME" lines), written by the caller; everything the node writes
# stays under DIR or in this mount namespace.
set -euo pipefail
dir=$1 kubelet=$2 name=$3 ip=$4

mount --make-rshared /
# `ip netns exec` mounted a fresh /sys without the cgroup hierarchies: mount the machine's again.
mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup
while read -r src mnt type opts _; do
  mkdir -p "$mnt"
  mount -t "$type" -o "$opts" "$src" "$mnt"
done < <(awk '$3 == "cgroup" || $3 == "cgroup2"' /proc/1/mounts)

# The node's own host paths, which hostPath volumes, the CNI runtime and kubelet's fixed paths
# (/var/lib/kubelet, /var/log/pods, /run/containerd/s) resolve to: the DaemonSet's /opt/cni/bin,
# /etc/cni/net.d, /var/lib/cni/networks and /run/podtun are this node's, not the machine's.
for d in opt etc-cni var-lib var-log; do mkdir -p "$dir/host/$d"; done
mkdir -p "$dir/host/var-lib/kubelet" "$dir/host/var-lib/cni"
mount --bind "$dir/host/opt" /opt
mount --bind "$dir/host/etc-cni" /etc/cni
mount --bind "$dir/host/var-lib" /var/lib
mount --bind "$dir/host/var-log" /var/log
mount -t tmpfs -o mode=755 node_run /run
mkdir -p /opt/cni/bin /etc/cni/net.d /run/netns

containerd --config "$dir/containerd.toml" >"$dir/containerd.log" 2>&1 &
echo $! >"$dir/containerd.pid"
for _ in $(seq 1 100); do [[ -S $dir/containerd.sock ]] && break; sleep 0.1; done
[[ -S $dir/containerd.sock ]] || { echo "containerd did not start: see $dir/containerd.log" >&2; exit 1; }
# Present before kubelet starts, so no pod ever tries a registry.
while read -r archive; do
  ctr -a "$dir/containerd.sock" -n k8s.io images import "$archive" >&2
done <"$dir/images.list"
while read -r source target; do
  ctr -a "$dir/containerd.sock" -n k8s.io images tag "$source" "$target" >&2
done <"$dir/image-tags.list"

exec "$kubelet" --config="$dir/kubelet.yaml" --kubeconfig="$dir/kubelet.kubeconfig" \
  --hostname-override="$name" --node-ip="$ip" --v=1
