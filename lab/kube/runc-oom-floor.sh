#!/usr/bin/env bash
# The runc a lab kubelet's containerd runs (lab/kube/kubelet-node.ts): this machine gives root no
# CAP_SYS_RESOURCE, so the kernel refuses the negative oom_score_adj kubelet asks for its sandboxes
# (-998) and critical pods (-997), and runc fails ("can't get final child's PID from pipe").
# Raises a negative value in the bundle's config.json to 0, then runs the real runc.
set -euo pipefail
args=("$@")
for ((i = 0; i < ${#args[@]} - 1; i++)); do
  if [[ ${args[$i]} == --bundle || ${args[$i]} == -b ]]; then
    config="${args[$((i + 1))]}/config.json"
    if [[ -f $config ]]; then
      jq 'if (.process.oomScoreAdj // 0) < 0 then .process.oomScoreAdj = 0 else . end' "$config" >"$config.floor"
      mv "$config.floor" "$config"
    fi
  fi
done
exec runc "$@"
