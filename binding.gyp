{
  "targets": [
    {
      "target_name": "linkerd_tcp_engine",
      "sources": [
        "native/batch.c",
        "native/conn.c",
        "native/copy.c",
        "native/engine.c",
        "native/heap.c",
        "native/io-thread.c",
        "native/listener.c",
        "native/napi.c",
        "native/napi-io.c",
        "native/napi-tls.c",
        "native/peek.c",
        "native/pick.c",
        "native/pipe-pool.c",
        "native/port-hold.c",
        "native/timers.c",
        "native/tls-conn.c",
        "native/tls-ctx.c"
      ],
      "cflags": ["-std=gnu11", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror"],
      "cflags!": ["-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none", "sources": []}]]
    }
  ]
}
