/*
 * podvault's own mount(2) and umount2(2) for Node, through Node-API only (node_api.h).
 *
 * Why: each publish and unpublish used to fork and exec mount(8) or umount(8), about 40% of the
 * driver's CPU per publish (issue 9). These two calls do what those utilities did for podvault
 * (checked with strace against util-linux 2.38: `mount --no-canonicalize ... /proc/self/fd/3` is a
 * single mount(2) on that magic link), in-process and synchronously: a tmpfs mount, remount or
 * unmount does no I/O and takes microseconds.
 *
 * Errors: a failed call throws an Error carrying `errno` (the number) and `syscall`; the
 * TypeScript side (mount-syscalls.ts) adds the `code` name from os.constants.errno.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <node_api.h>

#ifndef UMOUNT_NOFOLLOW
#define UMOUNT_NOFOLLOW 0x00000008
#endif

/* Longest string argument accepted: PATH_MAX for paths, and a mount data page. */
#define MAX_ARG 4096

#define CHECK(env, call)                                                   \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error((env), "EINVAL", "podvault mount addon: " #call);   \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

/*
 * args[index] as a new NUL-terminated string in *out, or NULL in *out for JS null/undefined when
 * `nullable`. Returns 0, or -1 with a TypeError thrown.
 */
static int string_arg(napi_env env, napi_value value, int nullable, const char *name, char **out) {
  napi_valuetype type;
  *out = NULL;
  if (napi_typeof(env, value, &type) != napi_ok) return -1;
  if (nullable && (type == napi_null || type == napi_undefined)) return 0;
  if (type != napi_string) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", name);
    return -1;
  }
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) return -1;
  if (length >= MAX_ARG) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", name);
    return -1;
  }
  char *buffer = malloc(length + 1);
  if (buffer == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return -1;
  }
  if (napi_get_value_string_utf8(env, value, buffer, length + 1, &length) != napi_ok) {
    free(buffer);
    return -1;
  }
  if (strlen(buffer) != length) { /* an embedded NUL would cut the path short */
    free(buffer);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", name);
    return -1;
  }
  *out = buffer;
  return 0;
}

static int flags_arg(napi_env env, napi_value value, const char *name, unsigned long *out) {
  napi_valuetype type;
  int64_t flags = 0;
  if (napi_typeof(env, value, &type) != napi_ok) return -1;
  if (type != napi_number || napi_get_value_int64(env, value, &flags) != napi_ok || flags < 0 || flags > 0xffffffffLL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", name);
    return -1;
  }
  *out = (unsigned long)flags;
  return 0;
}

/* Throw an Error for `errnum` from `syscall`: message "<syscall>: <strerror>", errno, syscall. */
static void throw_errno(napi_env env, const char *syscall, int errnum) {
  char message[256];
  napi_value msg, error, number, name;
  snprintf(message, sizeof message, "%s: %s", syscall, strerror(errnum));
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok) return;
  if (napi_create_error(env, NULL, msg, &error) != napi_ok) return;
  if (napi_create_int32(env, errnum, &number) == napi_ok) napi_set_named_property(env, error, "errno", number);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &name) == napi_ok) napi_set_named_property(env, error, "syscall", name);
  napi_throw(env, error);
}

/* mount(source, target, fstype | null, flags, data | null): undefined, or throws. */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value args[5];
  char *source = NULL, *target = NULL, *fstype = NULL, *data = NULL;
  unsigned long flags = 0;
  CHECK(env, napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc != 5) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "mount(source, target, fstype, flags, data)");
    return NULL;
  }
  if (string_arg(env, args[0], 0, "source", &source) == 0 && string_arg(env, args[1], 0, "target", &target) == 0 &&
      string_arg(env, args[2], 1, "fstype", &fstype) == 0 && flags_arg(env, args[3], "flags", &flags) == 0 &&
      string_arg(env, args[4], 1, "data", &data) == 0) {
    if (mount(source, target, fstype, flags, data) != 0) throw_errno(env, "mount", errno);
  }
  free(source);
  free(target);
  free(fstype);
  free(data);
  return NULL;
}

/* umount2(target, flags): undefined, or throws. */
static napi_value js_umount2(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  char *target = NULL;
  unsigned long flags = 0;
  CHECK(env, napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc != 2) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "umount2(target, flags)");
    return NULL;
  }
  if (string_arg(env, args[0], 0, "target", &target) == 0 && flags_arg(env, args[1], "flags", &flags) == 0) {
    if (umount2(target, (int)flags) != 0) throw_errno(env, "umount2", errno);
  }
  free(target);
  return NULL;
}

static napi_status set_number(napi_env env, napi_value object, const char *name, unsigned long value) {
  napi_value number;
  napi_status status = napi_create_double(env, (double)value, &number);
  return status == napi_ok ? napi_set_named_property(env, object, name, number) : status;
}

/* The flag values from this libc's headers, so the TypeScript side never hard-codes them. */
static napi_value constants(napi_env env) {
  napi_value object;
  if (napi_create_object(env, &object) != napi_ok) return NULL;
  if (set_number(env, object, "MS_RDONLY", MS_RDONLY) != napi_ok || set_number(env, object, "MS_NOSUID", MS_NOSUID) != napi_ok ||
      set_number(env, object, "MS_NODEV", MS_NODEV) != napi_ok || set_number(env, object, "MS_NOEXEC", MS_NOEXEC) != napi_ok ||
      set_number(env, object, "MS_REMOUNT", MS_REMOUNT) != napi_ok || set_number(env, object, "MS_BIND", MS_BIND) != napi_ok ||
      set_number(env, object, "UMOUNT_NOFOLLOW", UMOUNT_NOFOLLOW) != napi_ok)
    return NULL;
  return object;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn, flags;
  CHECK(env, napi_create_function(env, "mount", NAPI_AUTO_LENGTH, js_mount, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "mount", fn));
  CHECK(env, napi_create_function(env, "umount2", NAPI_AUTO_LENGTH, js_umount2, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "umount2", fn));
  flags = constants(env);
  if (flags == NULL) return NULL;
  CHECK(env, napi_set_named_property(env, exports, "constants", flags));
  return exports;
}
