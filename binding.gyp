{
  "targets": [
    {
      "target_name": "podtun",
      "sources": [
        "native/src/module.c",
        "native/src/napi-util.c",
        "native/src/io.c",
        "native/src/tun.c",
        "native/src/udp.c",
        "native/src/udp-send.c",
        "native/src/offload.c",
        "native/src/checksum.c",
        "native/src/seal.c",
        "native/src/seal-napi.c",
        "native/src/sealer.c",
        "native/src/host.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags!": ["-O3"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra"]
    }
  ]
}
