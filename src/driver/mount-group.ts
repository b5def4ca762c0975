import { invalidArgument } from '../errors/podvault-error.js';

/** The field the kubelet fills with the pod's `securityContext.fsGroup` (CSI VOLUME_MOUNT_GROUP). */
export const MOUNT_GROUP_FIELD = 'volume_capability.mount.volume_mount_group';

/** Largest gid accepted: Kubernetes' fsGroup is an int64 but Linux gids beyond int32 are not portable. */
const MAX_GID = 2 ** 31 - 1;

/**
 * The group the volume's files are made readable to, or undefined when the field is empty (no
 * fsGroup: the files stay root's, as before). Only plain decimal digits: `+5`, `0x10`, `1e3` or
 * spaces would otherwise slip through Number(); 0 is refused too, since group root needs no grant
 * and would hide a caller's mistake.
 */
export function parseMountGroup(raw: string | undefined, field = MOUNT_GROUP_FIELD): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!/^[1-9][0-9]{0,9}$/.test(raw) || Number(raw) > MAX_GID) {
    throw invalidArgument(`${field} ${JSON.stringify(raw.slice(0, 32))} must be a decimal group id from 1 to ${MAX_GID}`);
  }
  return Number(raw);
}
