# podvault's mount(2)/umount2(2) addon (mount.c); built by `npm run build:native` (native/build.mjs).
{
  "targets": [
    {
      "target_name": "podvault_mount",
      "sources": ["mount.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-O2", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2"]
    }
  ]
}
