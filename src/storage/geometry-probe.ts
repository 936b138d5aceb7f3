// What sector size a lease device has, as sanlock decides it when neither -Z nor -A is given:
// 512 for regular files, the logical sector size for block devices. (Callers apply -Z/-A and
// the align size through src/ondisk/geometry.ts.)
import { type DirectDisk, openDirectDisk } from './direct-disk.js';

export interface DeviceInfo {
  path: string;
  isBlockDevice: boolean;
  /** The sector size sanlock would use: 512 for files, logical size for block devices. */
  sectorSize: number;
  logicalSectorSize: number;
  physicalSectorSize: number;
  /** Bytes in the file or block device. */
  size: number;
}

/** Facts about an already open disk. */
export async function deviceInfo(disk: DirectDisk, timeoutMs?: number): Promise<DeviceInfo> {
  return {
    path: disk.path,
    isBlockDevice: disk.isBlockDevice,
    sectorSize: disk.isBlockDevice ? disk.logicalSectorSize : 512,
    logicalSectorSize: disk.logicalSectorSize,
    physicalSectorSize: disk.physicalSectorSize,
    size: await disk.size(timeoutMs),
  };
}

/** Opens `path` read-only with O_DIRECT (so the same errors as a real open surface) and probes it. */
export async function probeDevice(path: string, timeoutMs?: number): Promise<DeviceInfo> {
  const disk = await openDirectDisk(path, { readOnly: true, timeoutMs });
  try {
    return await deviceInfo(disk, timeoutMs);
  } finally {
    await disk.close();
  }
}

/** Shorthand: the sector size sanlock would pick for `path` without -Z. */
export async function probeSectorSize(path: string, timeoutMs?: number): Promise<number> {
  return (await probeDevice(path, timeoutMs)).sectorSize;
}
