import { describe, expect, it } from 'vitest';
import { parseMountInfo, selectMountInfo } from '../src/driver/mountinfo.js';

// Lines as the kernel writes them: a space in a path is \040, a backslash \134.
const TABLE = [
  '22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/l',
  '36 22 0:52 / /var/lib/kubelet/pods/a/volumes/kubernetes.io~csi/secrets/mount ro,nosuid,nodev,noexec,relatime - tmpfs podvault ro,size=8256k,mode=755',
  '37 22 0:53 / /var/lib/kubelet/pods/b\\040c/mount rw,nosuid - tmpfs podvault rw,size=8256k',
  '38 22 10:52 / /other\\134dir rw - ext4 /dev/sda1 rw',
  '39 36 0:52 / /var/lib/kubelet/pods/a/volumes/kubernetes.io~csi/secrets/mount rw - tmpfs podvault ro',
  '40 22 0:54 /sub /bound rw - tmpfs other rw',
].join('\n');

describe('selectMountInfo: only the lines asked for, parsed as parseMountInfo parses them', () => {
  const all = parseMountInfo(TABLE);
  it.each([
    { device: '0:52' },
    { device: '0:53' },
    { device: '10:52' },
    { device: '0:5' },
    { mountPoint: '/var/lib/kubelet/pods/a/volumes/kubernetes.io~csi/secrets/mount' },
    { mountPoint: '/var/lib/kubelet/pods/b c/mount' },
    { mountPoint: '/other\\dir' },
    { mountPoint: '/bound' },
    { mountPoint: '/sub' },
    { mountPoint: '/var/lib/kubelet/pods/b\\040c/mount' },
  ])('%o', (filter) => {
    const expected = all.filter((m) => ('device' in filter ? m.device === filter.device : m.mountPoint === filter.mountPoint));
    expect(selectMountInfo(TABLE, filter)).toEqual(expected);
    expect(selectMountInfo(`${TABLE}\n`, filter)).toEqual(expected);
  });

  it('a stack of two mounts at one path: both, in the order of the table', () => {
    expect(selectMountInfo(TABLE, { device: '0:52' }).map((m) => m.superOptions[0])).toEqual(['ro', 'ro']);
    expect(selectMountInfo(TABLE, { device: '0:52' })).toHaveLength(2);
  });
});
