// Valid (sector size, align size) pairs and what each implies. A lease area is exactly one
// align-size area; max_hosts is how many per-host sectors fit (capped at 2000).
import { SanlkCode, SanlockError } from '../codes.js';

export type SectorSize = 512 | 4096;
export const MIB = 1024 * 1024;

export interface Geometry {
  sectorSize: SectorSize;
  alignSize: number;
  maxHosts: number;
  /** LFL_ALIGN_* flag stored in leader.flags */
  leaderAlignFlag: number;
  /** RHF_ALIGN_* flag stored in the rindex header */
  rindexAlignFlag: number;
  /** entries an rindex of this geometry can hold */
  rindexMaxEntries: number;
}

export const DEFAULT_MAX_HOSTS = 2000;
export const LVB_SECTOR = 2002;

const table: Geometry[] = [
  { sectorSize: 512, alignSize: 1 * MIB, maxHosts: 2000, leaderAlignFlag: 0x10, rindexAlignFlag: 0x1, rindexMaxEntries: 16000 },
  { sectorSize: 4096, alignSize: 1 * MIB, maxHosts: 250, leaderAlignFlag: 0x10, rindexAlignFlag: 0x1, rindexMaxEntries: 16000 },
  { sectorSize: 4096, alignSize: 2 * MIB, maxHosts: 500, leaderAlignFlag: 0x20, rindexAlignFlag: 0x2, rindexMaxEntries: 32000 },
  { sectorSize: 4096, alignSize: 4 * MIB, maxHosts: 1000, leaderAlignFlag: 0x40, rindexAlignFlag: 0x4, rindexMaxEntries: 64000 },
  { sectorSize: 4096, alignSize: 8 * MIB, maxHosts: 2000, leaderAlignFlag: 0x80, rindexAlignFlag: 0x8, rindexMaxEntries: 128000 },
];

export const LFL_ALIGN_MASK = 0xf0;
export const RHF_ALIGN_MASK = 0x0f;

/** Geometry for an explicit pair, or -230 SANLK_ADDLS_SIZES when the pair is not one sanlock accepts. */
export function geometryFor(sectorSize: number, alignSize: number): Geometry {
  const g = table.find((t) => t.sectorSize === sectorSize && t.alignSize === alignSize);
  if (!g) throw new SanlockError(SanlkCode.SANLK_ADDLS_SIZES, `invalid sector size ${sectorSize} / align size ${alignSize}`);
  return g;
}

/** Geometry used when only the sector size is known (old leases without align flags, or no -Z/-A). */
export function defaultGeometry(sectorSize: number): Geometry {
  if (sectorSize === 512) return geometryFor(512, 1 * MIB);
  if (sectorSize === 4096) return geometryFor(4096, 8 * MIB);
  throw new SanlockError(SanlkCode.SANLK_LEADER_SECTORSIZE, `invalid sector size ${sectorSize}`);
}

/** Geometry from a leader's sector_size and flags (align flag, or the old default). */
export function geometryFromLeader(sectorSize: number, flags: number): Geometry {
  if (sectorSize !== 512 && sectorSize !== 4096) {
    throw new SanlockError(SanlkCode.SANLK_LEADER_SECTORSIZE, `invalid sector size ${sectorSize}`);
  }
  const alignFlag = flags & LFL_ALIGN_MASK;
  if (alignFlag === 0) return defaultGeometry(sectorSize);
  const g = table.find((t) => t.sectorSize === sectorSize && t.leaderAlignFlag === alignFlag);
  if (!g) throw new SanlockError(SanlkCode.SANLK_ADDLS_SIZES, `invalid align flag 0x${alignFlag.toString(16)} for sector size ${sectorSize}`);
  return g;
}

export function geometryFromRindexFlags(sectorSize: number, flags: number): Geometry {
  const alignFlag = flags & RHF_ALIGN_MASK;
  if (alignFlag === 0) return defaultGeometry(sectorSize);
  const g = table.find((t) => t.sectorSize === sectorSize && t.rindexAlignFlag === alignFlag);
  if (!g) throw new SanlockError(SanlkCode.SANLK_ADDLS_SIZES, `invalid rindex align flag 0x${alignFlag.toString(16)}`);
  return g;
}

export const allGeometries: readonly Geometry[] = table;
